"""Video datasets: sliced inference on frames, track ids, resume, broken videos, comparison.

Two generated videos (no downloads): a 1920x1080 drone-like clip, for the
sliced-vs-baseline comparison, and a small 640x384 one with sliced 320 px
tiles, cheap enough to run several times (tracking, interrupt and resume).
Bounds come from figures measured on these exact videos (see each test).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import fiftyone as fo
import fiftyone.operators as foo
import numpy as np
import pytest

import sliced_inference as si
from sliced_inference.evaluation.tracking import (
    FrameTracks,
    collection_identity_scores,
    identity_scores,
)
from sliced_inference.operators.compare_panel import summary_markdown
from sliced_inference.sdk import cached_model, sliced_run
from sliced_inference.sdk.field_claims import FieldInUseError
from sliced_inference.sdk.label_fields import LabelFieldError
from sliced_inference.slicer import (
    ConfigError,
    ModelOptions,
    Tracker,
    VideoError,
    VideoOptions,
    read_frames,
)
from sliced_inference.synthetic import (
    VideoLabels,
    iter_video_frames,
    load_fiftyone_video_dataset,
    write_video,
)
from sliced_inference.synthetic.video import labels_path, write_cut_video

SLICED_OP = "@slicer/sliced-inference/run_sliced_inference"
BASELINE_OP = "@slicer/sliced-inference/run_baseline_inference"
#: The small video's run: 320 px tiles (6 per frame), every frame tracked.
SMALL = dict(slice_wh=320, overlap=0.2)


@pytest.fixture(scope="module")
def drone_video(session_dir: Path) -> Path:
    """12 frames of 1920x1080, about 30 objects of 12-40 px, most moving."""
    path = session_dir / "videos" / "drone.mp4"
    if not path.exists():
        write_video(path, num_frames=12, seed=0)
    return path


@pytest.fixture(scope="module")
def small_video(session_dir: Path) -> Path:
    """16 frames of 640x384 with about 15 small objects."""
    path = session_dir / "videos" / "small.mp4"
    if not path.exists():
        write_video(path, num_frames=16, width=640, height=384, seed=3, density=60)
    return path


def _frame_labels(dataset: fo.Dataset, field: str) -> dict[int, list[tuple]]:
    """Frame number -> (label, rounded box, track id) of each detection."""
    numbers, labels = dataset.values(["frames.frame_number", f"frames.{field}"])
    return {
        n: [
            (d.label, tuple(np.round(d.bounding_box, 6)), d.index)
            for d in dets.detections
        ]
        for n, dets in zip(numbers[0], labels[0], strict=True)
        if dets is not None
    }


def test_generated_video_has_moving_objects_and_true_track_ids(
    drone_video: Path,
) -> None:
    labels = VideoLabels.load(labels_path(drone_video))
    assert (labels.width, labels.height, len(labels.frames)) == (1920, 1080, 12)
    first, last = labels.frames[0], labels.frames[-1]
    assert len(first.boxes) >= 15
    sizes = np.array(
        [max(b[2] - b[0], b[3] - b[1]) for f in labels.frames for b in f.boxes]
    )
    assert np.median(sizes) < 32  # small objects
    # The same ids in consecutive frames, and some of them have moved.
    common = set(first.track_ids) & set(last.track_ids)
    assert len(common) >= 10
    start = {t: b for t, b in zip(first.track_ids, first.boxes, strict=True)}
    end = {t: b for t, b in zip(last.track_ids, last.boxes, strict=True)}
    moved = [t for t in common if abs(start[t][0] - end[t][0]) > 10]
    assert len(moved) >= 5
    # The file decodes to the frames that were drawn (up to mp4v's loss).
    (number, rgb), (image, _) = (
        next(read_frames(drone_video, [1])),
        next(iter_video_frames(12, 1920, 1080, seed=0)),
    )
    assert number == 1 and rgb.shape == image.shape
    assert np.abs(rgb.astype(int) - image).mean() < 6


def test_sliced_frames_beat_the_whole_frame_baseline(
    drone_video: Path, det_model_path: Path
) -> None:
    dataset = load_fiftyone_video_dataset([drone_video])
    model = str(det_model_path)
    sliced = si.apply_sliced_model(
        dataset, model, "sliced", frame_step=4, tracker="bytetrack"
    )
    si.apply_baseline_model(dataset, model, "baseline", frame_step=4)
    # Every 4th frame labelled, the others untouched.
    assert sorted(_frame_labels(dataset, "sliced")) == [1, 5, 9]
    assert (sliced.frames_processed, sliced.frames_total, sliced.processed) == (3, 3, 1)
    record = si.get_run_info(dataset, "sliced")
    assert record["media_type"] == "video" and record["frames_processed"] == 3
    assert record["settings"]["frame_step"] == 4

    comparison = si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])
    assert comparison.fields == ["frames.baseline", "frames.sliced"]
    base, ours = comparison.runs
    # Per frame: 3 frames of about 30 objects each.
    assert ours.overall.tp + ours.overall.fn == dataset.match_frames(
        fo.ViewField("sliced").exists()
    ).count("frames.ground_truth.detections")
    # Measured: sliced small AP50 0.93, whole frame 0.00.
    assert ours.by_size["small"].AP50 > 0.75
    assert base.by_size["small"].AP50 < 0.1
    # The panel's summary says what was evaluated, and scores the tracks.
    summary = summary_markdown(comparison)
    assert "3 frames of 1 video" in summary
    assert "frames.sliced tracks: IDF1" in summary and ours.identity["idf1"] > 0.5
    assert base.identity is None  # not tracked
    assert "frames.sliced" in str(comparison)
    # The per-frame eval key and the review views work on frame fields.
    assert dataset.count("frames.ground_truth.detections.si_sliced") > 0
    recovered = si.recovered_view(dataset, "ground_truth", "baseline", "sliced")
    assert recovered.count("frames.ground_truth.detections") > 20
    dataset.delete()


def test_tracking_ids_idf1_and_resume_equals_an_uninterrupted_run(
    small_video: Path, det_model_path: Path
) -> None:
    dataset = load_fiftyone_video_dataset([small_video])
    model = str(det_model_path)
    full = si.apply_sliced_model(
        dataset, model, "tracked", tracker="bytetrack", **SMALL
    )
    assert full.frames_processed == 16
    scores = collection_identity_scores(dataset, "ground_truth", "tracked")
    # Measured on this video: IDF1 0.90 (ByteTrack on sliced detections).
    assert scores.idf1 > 0.75, scores
    assert scores.num_pred_ids <= 2 * scores.num_true_ids
    record = si.get_run_info(dataset, "tracked")
    assert record["settings"]["tracker"] == "bytetrack"
    assert record["settings"]["track_buffer"] == 30

    # Interrupt after 6 frames, then resume: the same labels and track ids.
    run = sliced_run(dataset, model, "resumed", tracker="bytetrack", **SMALL)
    progress = run.iter_execute()
    frames_done = 0
    for _, label in progress:
        frames_done += label.endswith("video 1/1")
        if frames_done == 6:
            break
    # One writer per field, as for images: the running run holds the claim.
    with pytest.raises(FieldInUseError):
        si.apply_sliced_model(dataset, model, "resumed", skip_existing=True, **SMALL)
    progress.close()
    assert si.get_run_info(dataset, "resumed")["status"] == "interrupted"
    assert sorted(_frame_labels(dataset, "resumed")) == list(range(1, 7))
    # A resume with other settings would mix two runs' frames: refused.
    with pytest.raises(LabelFieldError, match="other settings"):
        si.apply_sliced_model(
            dataset, model, "resumed", tracker="bytetrack", skip_existing=True
        )
    resumed = si.apply_sliced_model(
        dataset, model, "resumed", tracker="bytetrack", skip_existing=True, **SMALL
    )
    assert (resumed.frames_processed, resumed.frames_skipped) == (10, 6)
    assert _frame_labels(dataset, "resumed") == _frame_labels(dataset, "tracked")
    # The field's history holds both runs, with the same settings.
    info = si.get_run_info(dataset, "resumed")
    assert info["status"] == "completed" and len(info["run_ids"]) == 2
    assert not info["mixed_settings"]
    dataset.delete()


def test_int8_on_a_video_calibrates_on_its_first_frame(
    small_video: Path, det_model_path: Path
) -> None:
    dataset = load_fiftyone_video_dataset([small_video])
    model = str(det_model_path)
    options = {"precision": "int8", "calibration_tiles": 4}
    summary = si.apply_sliced_model(
        dataset, model, "int8", frame_step=8, **options, **SMALL
    )
    assert summary.frames_processed == 2 and summary.num_detections > 0
    record = si.get_run_info(dataset, "int8")
    assert record["status"] == "completed"
    assert record["settings"]["precision"] == "int8"
    # A video is not an image: the model took its first frame's first tiles.
    tiles = cached_model(model, ModelOptions(**options))
    assert not tiles.needs_calibration and tiles.precision == "int8"
    manifest = json.loads((tiles.network.folder / "manifest.json").read_text())
    assert manifest["key"]["calibration_tiles"] == 4
    dataset.delete()


def test_broken_videos_are_skipped_and_a_one_frame_video_works(
    session_dir: Path, small_video: Path, det_model_path: Path
) -> None:
    folder = session_dir / "broken-videos"
    folder.mkdir(exist_ok=True)
    one = folder / "one.mp4"
    write_video(one, num_frames=1, width=640, height=384, seed=5, density=60)
    corrupt = folder / "corrupt.mp4"
    corrupt.write_bytes(small_video.read_bytes()[:5000])  # no index: unreadable
    truncated = write_cut_video(folder / "truncated.avi")  # 10 frames announced
    dataset = fo.Dataset()
    dataset.add_samples([fo.Sample(filepath=str(p)) for p in (corrupt, one, truncated)])
    dataset.compute_metadata(skip_failures=True)
    if not dataset.exists("metadata").match(fo.ViewField("filepath").ends_with("avi")):
        pytest.fail("ffprobe found no metadata for the AVI (is ffmpeg installed?)")
    summary = si.apply_sliced_model(dataset, str(det_model_path), "sliced", **SMALL)
    by_path = dict(zip(dataset.values("filepath"), dataset.values("id"), strict=True))
    assert summary.processed == 1 and summary.frames_processed == 1
    assert set(summary.errors) == {by_path[str(corrupt)], by_path[str(truncated)]}
    assert "truncated" in summary.errors[by_path[str(truncated)]]
    # Nothing stays on the skipped videos; the 1-frame video is labelled.
    assert dataset.select(by_path[str(truncated)]).count("frames.sliced") == 0
    assert dataset.select(by_path[str(one)]).count("frames.sliced") == 1
    record = si.get_run_info(dataset, "sliced")
    assert record["num_errors"] == 2 and record["status"] == "completed"
    dataset.delete()


def test_frame_range_overwrite_and_video_option_checks(
    small_video: Path, det_model_path: Path
) -> None:
    dataset = load_fiftyone_video_dataset([small_video])
    model = str(det_model_path)
    si.apply_baseline_model(
        dataset, model, "whole", first_frame=3, last_frame=100, frame_step=5
    )
    assert sorted(_frame_labels(dataset, "whole")) == [3, 8, 13]
    with pytest.raises(LabelFieldError, match="already exists"):
        si.apply_baseline_model(dataset, model, "whole")
    # Overwrite: the field holds this run's frames only.
    si.apply_baseline_model(dataset, model, "whole", last_frame=2, overwrite=True)
    assert sorted(_frame_labels(dataset, "whole")) == [1, 2]
    with pytest.raises(ConfigError, match="last_frame"):
        si.apply_sliced_model(dataset, model, "x", first_frame=5, last_frame=2)
    with pytest.raises(ConfigError, match="tracker"):
        si.apply_sliced_model(dataset, model, "x", tracker="sort")
    with pytest.raises(ConfigError, match="frame_step"):
        si.apply_sliced_model(dataset, model, "x", frame_step=0)
    images = fo.Dataset()
    images.add_sample(fo.Sample(filepath="/tmp/image.jpg"))
    with pytest.raises(ConfigError, match="video collections"):
        si.apply_sliced_model(images, model, "x", tracker="bytetrack")
    images.delete()
    dataset.delete()


def test_tracker_settings_are_ultralytics_defaults() -> None:
    from ultralytics.utils import YAML
    from ultralytics.utils.checks import check_yaml

    for name in ("bytetrack", "botsort"):
        theirs = YAML.load(check_yaml(f"{name}.yaml"))
        ours = VideoOptions(tracker=name).tracker_settings()
        for key, value in ours.items():
            assert theirs[key] == value, (name, key)
    with pytest.raises(ConfigError):
        Tracker(VideoOptions())


def test_botsort_tracks_with_motion_compensation() -> None:
    tracker = Tracker(VideoOptions(tracker="botsort"))
    assert tracker.needs_frames
    frame = np.zeros((120, 160, 3), np.uint8)
    boxes = np.array([[10.0, 10.0, 30.0, 30.0], [100.0, 60.0, 120.0, 90.0]])
    ids = [
        tracker.update(
            boxes + [3 * i, 0, 3 * i, 0], np.array([0.9, 0.8]), [0, 1], frame
        )
        for i in range(4)
    ]
    assert [i.tolist() for i in ids] == [[1, 2]] * 4
    with pytest.raises(ConfigError, match="needs the frame"):
        tracker.update(boxes, np.array([0.9, 0.8]), [0, 1])


def test_identity_scores_count_switches_and_pairs() -> None:
    gt = [FrameTracks([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 2])] * 4
    same = [FrameTracks([[0, 0, 10, 10], [20, 0, 30, 10]], [5, 6])] * 4
    assert identity_scores(gt, same).idf1 == 1.0
    # Object 1 changes id halfway: half its frames keep the paired id.
    switched = same[:2] + [FrameTracks([[0, 0, 10, 10], [20, 0, 30, 10]], [7, 6])] * 2
    scores = identity_scores(gt, switched)
    assert scores.id_switches == 1 and scores.idtp == 6
    assert scores.idf1 == pytest.approx(2 * 6 / 16)
    untracked = [FrameTracks([[0, 0, 10, 10]], [-1])] * 4
    assert identity_scores(gt, untracked).num_untracked == 4


def test_read_frames_decodes_once_and_names_the_missing_frame(
    tmp_path: Path,
) -> None:
    path = write_cut_video(tmp_path / "ten.avi", keep=1.0)  # whole: 10 frames
    frames = list(read_frames(path, [2, 5, 10], pixels_for={5}))
    assert [(n, f is None) for n, f in frames] == [(2, True), (5, False), (10, True)]
    with pytest.raises(VideoError, match="before frame 11"):
        list(read_frames(path, [1, 11]))
    with pytest.raises(VideoError, match="not found"):
        list(read_frames(tmp_path / "missing.mp4", [1]))


def _form_inputs(uri: str, dataset: fo.Dataset, params: dict) -> dict:
    from fiftyone.operators.executor import ExecutionContext

    ctx = ExecutionContext(
        request_params={
            "dataset_name": dataset.name,
            "view": dataset.view()._serialize(),
            "params": params,
        }
    )
    return foo.get_operator(uri).resolve_input(ctx).type.properties


def test_run_operators_show_frame_options_for_videos_only(
    small_video: Path, det_model_path: Path, session_dir: Path
) -> None:
    videos = load_fiftyone_video_dataset([small_video], name="test-video-operators")
    images = fo.Dataset("test-video-operators-images")
    image = session_dir / "videos" / "frame.png"
    cv2.imwrite(str(image), np.zeros((64, 64, 3), np.uint8))
    images.add_sample(fo.Sample(filepath=str(image)))
    params = {"model": str(det_model_path), "label_field": "ops"}
    for uri in (SLICED_OP, BASELINE_OP):
        on_videos = _form_inputs(uri, videos, params)
        assert {"frame_step", "first_frame", "last_frame", "tracker"} <= set(on_videos)
        assert "track_buffer" not in on_videos  # until a tracker is chosen
        assert "frame_step" not in _form_inputs(uri, images, params)
    tracked = _form_inputs(SLICED_OP, videos, {**params, "tracker": "botsort"})
    assert {"track_buffer", "match_thresh", "gmc_method"} <= set(tracked)
    bad = _form_inputs(SLICED_OP, videos, {**params, "frame_step": 0})["frame_step"]
    assert bad.invalid

    result = foo.get_operator(SLICED_OP)(
        videos, str(det_model_path), "ops", last_frame=3, tracker="bytetrack", **SMALL
    )
    assert result.error is None, result.error
    assert result.result["frames_processed"] == 3
    assert sorted(_frame_labels(videos, "ops")) == [1, 2, 3]
    assert si.get_run_info(videos, "ops")["settings"]["tracker"] == "bytetrack"
    # The plugin's own ConfigError class (a ValueError) is loaded by FiftyOne.
    with pytest.raises(ValueError, match="frame_step"):
        foo.get_operator(SLICED_OP)(videos, str(det_model_path), "x", frame_step=0)
    images.delete()
    videos.delete()
