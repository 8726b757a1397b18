"""The one error of bad video input: a missing or unreadable video, a corrupt frame, a bad detection row."""

from ..utils.errors import InvalidInputError


class VideoInputError(InvalidInputError):
    """Bad video input; the message names the file (and the frame or row) and the fix."""


__all__ = ["VideoInputError"]
