"""How re-ID file names carry ids: a :class:`FileNameScheme` per data set named by pattern, and camera tokens.

Market-1501, DukeMTMC-reID, CUHK03-np and MSMT17 name each image by person and camera (each loader module defines its
scheme); folder-per-person sets carry the person in the folder name and maybe a camera token (:func:`parse_camera_id`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .records import ReIDDataError

__all__ = ["CAMERA_PATTERN", "MAX_ID", "FileNameScheme", "parse_camera_id"]

MAX_ID = 2**31 - 1
"""The largest person or camera id a data set stores (its Arrow columns are int32)."""

CAMERA_PATTERN = re.compile(r"(?:^|[^a-z0-9])(?:camera|cam|c)[_-]?(\d+)", re.IGNORECASE)
"""How a camera id is found in a file name (or a path relative to the person folder): ``c1``, ``cam1``, ``cam_2``,
``camera-3`` at the start or after a non-alphanumeric character (``0002_c1s1_000451_03.jpg`` -> 1,
``cam2/angle3.jpg`` -> 2, ``front_c3.png`` -> 3). Names without such a token get camera id -1 (unknown)."""


@dataclass(frozen=True)
class FileNameScheme:
    """How a data set names its images by person and camera; :meth:`parse` reads both ids from a file name.

    Args:
        dataset (`str`): the set's name in messages (``"DukeMTMC-reID"``).
        pattern (`re.Pattern`): matches a file stem, with groups ``person`` and ``camera``.
        template (`str`): the pattern as users read it (``"PPPP_cC_fFFFFFFF.jpg"``).
        example (`str`): a real file name (``"0001_c1_f0046182.jpg"``).
        fix (`str`, *optional*): what the error of a name that does not parse tells the user to do.
    """

    dataset: str
    pattern: re.Pattern
    template: str
    example: str
    fix: str = (
        "Rename it or move it out of the folder, or load a folder-per-person set with "
        'load_reid_dataset("identity_folders", ...).'
    )

    def parse(self, path: str | os.PathLike) -> tuple[int, int]:
        """Person id and camera id of the file name of `path`, or `ReIDDataError` naming the file and the pattern."""
        name = os.path.basename(path)
        if not name.isprintable():  # a line break in a name would split every message and listing that shows it
            raise ReIDDataError(
                f"File name {os.fspath(path)!r} contains a line break or another control character: rename the file "
                f"as {self.template} (e.g. {self.example})."
            )
        match = self.pattern.fullmatch(os.path.splitext(name)[0])
        if match is None:
            raise ReIDDataError(
                f"File name {path} does not follow the {self.dataset} pattern {self.template} (e.g. {self.example}). "
                + self.fix
            )
        person_id, camera_id = int(match.group("person")), int(match.group("camera"))
        for what, value in (("person", person_id), ("camera", camera_id)):
            if value > MAX_ID:
                raise ReIDDataError(
                    f"File name {path}: its {what} id {value} is larger than {MAX_ID:,}, the largest id a data set "
                    "stores (int32). Renumber the ids in the file names below that limit."
                )
        return person_id, camera_id


def parse_camera_id(name: str) -> int:
    """Camera id found by :data:`CAMERA_PATTERN` in `name`, or -1.

    Example:
        >>> parse_camera_id("0002_c1s1_000451_03.jpg"), parse_camera_id("cam2/img_7.png"), parse_camera_id("a.jpg")
        (1, 2, -1)
    """
    match = CAMERA_PATTERN.search(name)
    return int(match.group(1)) if match else -1
