"""People in video: reading videos and frame folders, MOT Challenge detections, an IoU linker, tracklets embedded
and indexed with their video, camera and times, and searching them with a person crop.

Reading video files needs the `video` extra (PyAV).
"""

from .detector import PersonDetector
from .errors import VideoInputError
from .indexing import VIDEO_INDEX_DATASET, VideoJob, index_videos
from .linker import box_iou, link_by_iou
from .mot import Detections, read_mot
from .reader import VideoSource, camera_from_name, open_video
from .search import TrackletHit, draw_contact_sheet, search_tracklets, tracklet_thumbnails
from .tracklets import Tracklet, build_tracklets, hms

__all__ = [
    "VIDEO_INDEX_DATASET",
    "Detections",
    "PersonDetector",
    "Tracklet",
    "TrackletHit",
    "VideoInputError",
    "VideoJob",
    "VideoSource",
    "box_iou",
    "build_tracklets",
    "camera_from_name",
    "draw_contact_sheet",
    "hms",
    "index_videos",
    "link_by_iou",
    "open_video",
    "read_mot",
    "search_tracklets",
    "tracklet_thumbnails",
]
