"""The latent-space explorer's Gradio UI: three tabs, each wired to its module of `crossingnets.explorer`.

UI only: every computation is a function of `crossingnets.explorer`. Building the UI needs a
loaded `Explorer` (the caller loads it); importing this module loads no weights and starts no
server. `crossingnets app` (launch.py beside this file) loads, builds and launches.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
import plotly
from gradio.components.plot import PlotData
from PIL import Image

from crossingnets.camera import CAMERAS, HANDEDNESS
from crossingnets.data.depth_units import UNITS
from crossingnets.explorer.examples import example_camera
from crossingnets.explorer.figures import Figure
from crossingnets.explorer.latent import (
    SLIDER_SIGMAS,
    latent_from_named,
    latent_from_sliders,
    latent_view,
    random_latent,
    slider_id,
    start_latent,
)
from crossingnets.explorer.nearest import caption, thumbnail
from crossingnets.explorer.space import Explorer
from crossingnets.explorer.upload import (
    CAMERA_CHOICES,
    CAMERA_FILE,
    camera_choice_label,
    camera_spec,
    mesh_view,
    preview_view,
    upload_view,
)
from crossingnets.explorer.walk import (
    WALK_CAMERAS,
    WALK_MODES,
    upload_latents,
    walk_gif,
    walk_latents,
    walk_view,
)
from crossingnets_app.memory import trim

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PLOTLY_JS_URL = f"gradio_api/file={PLOTLY_JS}"  # relative: the walk's iframe inherits the page's URL
# Every event that runs the model draws on one pool of this many workers (a per-event limit would
# let 19 events run 4 each): enough to keep both cores busy with one torch thread per request,
# few enough that a burst queues rather than thrashes (benchmarks/app.py measures 1-8).
MODEL_CONCURRENCY = 4


def _plot(fig: Figure) -> PlotData:
    """A figure dict as gr.Plot's payload, skipping plotly's validation (see explorer/figures.py)."""
    return PlotData(type="plotly", plot=json.dumps(fig))


def _user_errors(fn: Callable) -> Callable:
    """Show a handler's ValueError (bad input: its message names what was wrong) in the page."""

    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except ValueError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper


PRUNE_EVERY_S = 60.0  # how often the events' output folders and Gradio's cache are checked for old files


def prune_old(root: Path, max_age_s: float) -> None:
    """Delete what under `root` is older than `max_age_s`: a folder once all its files are that old,
    a file by its own age. For the folders the events write their outputs into (Gradio copies
    returned files into its cache), and for Gradio's private cache itself, whose own schedule
    (`delete_cache`) left cached outputs, emptied per-file folders and empty upload temp files (a
    3-minute soak with a 30 s lifetime: 350 cached outputs over 90 s old; 10 minutes: ~4,800 files)."""
    now = time.time()
    for entry in root.iterdir():
        with contextlib.suppress(OSError):  # gone meanwhile
            stamps = [entry.stat().st_mtime]
            if entry.is_dir():
                stamps += [f.stat().st_mtime for f in entry.iterdir()]
            if now - max(stamps) > max_age_s:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def build_demo(
    ex: Explorer, concurrency: int = MODEL_CONCURRENCY, file_lifetime_s: float = 600.0
) -> gr.Blocks:
    """The explorer's Blocks (upload, latent, walk tabs) around a loaded Explorer; the events that
    run the model run at most `concurrency` at once, together. The files the events write are
    deleted once older than `file_lifetime_s` (checked at most once a minute)."""
    model = {"concurrency_limit": concurrency, "concurrency_id": "model"}
    files_root = tempfile.TemporaryDirectory(prefix="crossingnets-app-")  # removed at exit
    # Served in place: Gradio would otherwise hash every returned file, copy it into its cache
    # and check it against the allowed paths, ~30 ms of a slider event's CPU (benchmarks/app.py);
    # each file here is written once, in a folder of its own, and never changed.
    gr.set_static_paths([PLOTLY_JS, files_root.name])
    # Read when the Blocks is queued: the queue rebuilds a pandas summary of its last 10,000 events
    # for its monitoring page after every event, 11-23 ms of CPU each; every 1,000th is enough.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "1000")
    pruned = [time.monotonic()]

    def fresh_dir() -> str:
        if time.monotonic() - pruned[0] > PRUNE_EVERY_S:
            pruned[0] = time.monotonic()
            prune_old(Path(files_root.name), file_lifetime_s)
            if gradio_cache := os.environ.get("GRADIO_TEMP_DIR"):
                prune_old(Path(gradio_cache), file_lifetime_s)
            trim()  # the heap's freed pages back to the system (crossingnets_app.memory)
        return tempfile.mkdtemp(dir=files_root.name)

    def png(image: Image.Image) -> str:
        """An output image as a PNG file of its own: exact pixels, and Gradio caches a file
        atomically, where it rewrites an identical in-memory image in place under concurrent requests."""
        path = Path(fresh_dir()) / "image.png"
        image.save(path, compress_level=1)  # 1.6x faster than the default 6; files ~30 % larger
        return str(path)

    nyu = CAMERAS["nyu"]
    start = latent_view(ex, start_latent(ex))
    examples = list(ex.example_paths)

    with gr.Blocks(title="Crossing Nets latent-space explorer", analytics_enabled=False) as demo:
        upload_state = gr.State(
            None
        )  # {"latent": (L,), "joints_xyz": (J, 3), "handedness"} of the last upload
        latent_state = gr.State(start.latent.tolist())
        gr.Markdown(
            "# Crossing Nets: latent-space explorer\n"
            "3D hand pose from one depth image through a latent space shared by a pose VAE and a depth "
            f"GAN (Wan et al., CVPR 2017). Model: {ex.convention.name.upper()} joints, "
            f"{ex.crop.crop_px} px crops of a {ex.crop.cube_mm:g} mm cube."
        )
        with gr.Tabs():
            # -- upload ---------------------------------------------------------------------------
            with gr.Tab("Upload", id="upload"):
                with gr.Row():
                    with gr.Column(scale=1):
                        depth_file = gr.File(
                            label="Depth image: 16-bit PNG, NYU RGB PNG, MSRA .bin or .npy",
                            type="filepath",
                        )
                        camera = gr.Dropdown(
                            [(camera_choice_label(c), c) for c in CAMERA_CHOICES], value="nyu", label="Camera"
                        )
                        with gr.Row():
                            depth_unit = gr.Dropdown(
                                list(UNITS),
                                value="mm",
                                allow_custom_value=True,
                                label="Depth unit (or mm per value)",
                            )
                            handedness = gr.Radio(list(HANDEDNESS), value="right", label="Hand")
                        with gr.Accordion("Custom camera (px)", open=False):
                            with gr.Row():
                                fx, fy = gr.Number(nyu.fx, label="fx"), gr.Number(nyu.fy, label="fy")
                                cx, cy = gr.Number(nyu.cx, label="cx"), gr.Number(nyu.cy, label="cy")
                        with gr.Accordion("Camera file (ROS camera_info YAML, RealSense JSON)", open=False):
                            camera_file = gr.File(
                                label="Camera file", file_types=[".yaml", ".yml", ".json"], type="filepath"
                            )
                        with gr.Accordion(
                            "Hand centre (optional; 0 = detect; or click the hand)", open=False
                        ):
                            with gr.Row():
                                cu, cv = gr.Number(0, label="u (px)"), gr.Number(0, label="v (px)")
                                cd = gr.Number(0, label="d (mm; 0 = from the image)")
                        estimate_btn = gr.Button("Estimate pose", variant="primary")
                        preview = gr.Image(
                            label="The frame: click the hand to set its centre",
                            type="filepath",
                            interactive=False,
                            height=300,
                        )
                        summary = gr.Markdown()
                    with gr.Column(scale=2):
                        with gr.Row():
                            overlay = gr.Image(
                                label="Detected crop + estimated skeleton",
                                type="filepath",
                                height=300,
                                scale=2,
                            )
                            pose_plot = gr.Plot(label="Estimated 3D pose", scale=3)
                        with gr.Row(equal_height=True):  # analysis by synthesis, one colour scale
                            input_crop = gr.Image(label="Input crop (mm)", type="filepath", height=260)
                            generated = gr.Image(
                                label="Generated crop, Gen(z) (mm)",
                                type="filepath",
                                height=260,
                            )
                            difference = gr.Image(
                                label="Difference, gen - input (mm)", type="filepath", height=260
                            )
                        synthesis_note = gr.Markdown()
                        error_plot = gr.Plot(label="Error per joint (the frame's labels)", visible=False)
                        with gr.Row():
                            joint_files = gr.File(label="Joints (JSON, CSV)", file_count="multiple")
                            with gr.Column():
                                mesh_btn = gr.Button("Posed hand mesh (GLB)")
                                mesh_file = gr.File(label="Hand mesh (GLB)")

                def estimate_outputs(
                    path, cam, fx_, fy_, cx_, cy_, u, v, d, unit="mm", hand="right", cam_file=None
                ):
                    if path is None:
                        raise ValueError("upload a depth image first")
                    view = upload_view(
                        ex,
                        path,
                        camera_spec(cam, cam_file),
                        (fx_, fy_, cx_, cy_),
                        (u, v, d),
                        fresh_dir(),
                        depth_unit=unit,
                        handedness=hand,
                    )
                    state = {
                        "latent": view.latent.tolist(),
                        "joints_xyz": view.joints_xyz_mm.tolist(),
                        "handedness": hand,
                    }
                    synthesis = view.synthesis
                    errors = view.error_figure
                    return (
                        png(view.overlay),
                        _plot(view.figure),
                        png(synthesis.input_image),
                        png(synthesis.generated_image),
                        png(synthesis.difference_image),
                        view.synthesis_note,
                        gr.Plot(None if errors is None else _plot(errors), visible=errors is not None),
                        view.summary,
                        [str(f) for f in view.files],
                        state,
                        png(view.preview),
                    )

                on_estimate = _user_errors(estimate_outputs)

                def on_upload_estimate(*args):
                    """The estimate that follows an upload: a failure is said under the frame, which
                    stays in view (an error would blank every output), and the old pose is cleared."""
                    try:
                        return estimate_outputs(*args)
                    except ValueError as err:
                        cleared = [None] * (len(upload_outputs) - 1)  # all but the preview
                        cleared[upload_outputs.index(summary)] = f"**No pose:** {err}"
                        cleared[upload_outputs.index(error_plot)] = gr.Plot(None, visible=False)
                        return *cleared, gr.skip()

                @_user_errors
                def on_preview(path, cam, fx_, fy_, cx_, cy_, unit, cam_file):
                    """The new frame with the detector's choice, before (and whatever) the estimate."""
                    if path is None:
                        return None, ""
                    view = preview_view(
                        ex, path, camera_spec(cam, cam_file), (fx_, fy_, cx_, cy_), None, unit
                    )
                    return png(view.image), view.caption

                def on_click(evt: gr.SelectData):
                    """A click on the frame: its pixel is the hand centre (depth from the image)."""
                    u, v = evt.index
                    return u, v, 0

                upload_inputs = [
                    depth_file,
                    camera,
                    fx,
                    fy,
                    cx,
                    cy,
                    cu,
                    cv,
                    cd,
                    depth_unit,
                    handedness,
                    camera_file,
                ]
                upload_outputs = [
                    overlay,
                    pose_plot,
                    input_crop,
                    generated,
                    difference,
                    synthesis_note,
                    error_plot,
                    summary,
                    joint_files,
                    upload_state,
                    preview,
                ]
                private = {"api_visibility": "private"}
                estimate_btn.click(on_estimate, upload_inputs, upload_outputs, api_name="estimate", **model)
                depth_file.upload(lambda: (0, 0, 0), None, [cu, cv, cd], **private).then(
                    on_preview,
                    [depth_file, camera, fx, fy, cx, cy, depth_unit, camera_file],
                    [preview, summary],
                    **private,
                    **model,
                ).then(on_upload_estimate, upload_inputs, upload_outputs, **private, **model)
                preview.select(on_click, None, [cu, cv, cd], **private).then(
                    on_estimate, upload_inputs, upload_outputs, **private, **model
                )
                camera_file.upload(lambda: CAMERA_FILE, None, camera, **private)
                gr.Examples(
                    [[str(path), example_camera(path)] for path in ex.example_paths.values()],
                    inputs=[depth_file, camera],
                    outputs=upload_outputs,
                    fn=lambda path, cam: on_estimate(path, cam, nyu.fx, nyu.fy, nyu.cx, nyu.cy, 0, 0, 0),
                    run_on_click=True,
                    cache_examples=False,
                    label="Synthetic examples (click one)",
                )

                @_user_errors
                def on_mesh(state):
                    joints = None if state is None else np.asarray(state["joints_xyz"])
                    hand = "right" if state is None else state.get("handedness", "right")
                    return str(mesh_view(ex, joints, fresh_dir(), hand))

                # its IK fit takes seconds: a lane of its own, so it never holds the model's workers
                mesh_btn.click(
                    on_mesh,
                    upload_state,
                    mesh_file,
                    api_name="mesh",
                    concurrency_limit=1,
                    concurrency_id="mesh",
                )

            # -- latent ---------------------------------------------------------------------------
            with gr.Tab("Latent", id="latent"):
                gr.Markdown(
                    "One point of the shared latent space, projected into a pose (VAE decoder, the "
                    "skeleton) and a depth map (generator: points in 3D, colours in 2D). **Named sliders** "
                    "each move one measured attribute of the pose and hold the others and the hand's "
                    "position (a local conditional direction: hover a slider's name for how it is "
                    "measured). The principal directions and the raw coordinates are in the panels below."
                )
                with gr.Row():
                    with gr.Column(scale=1):
                        sliders = ex.sliders
                        named_sliders = [
                            gr.Slider(
                                sliders.low[k],
                                sliders.high[k],
                                value=start.named[k],
                                step=1,
                                label=sliders.labels[k],
                                info=sliders.info[k],
                                elem_id=slider_id(name),
                                buttons=[],  # no reset arrow: "Reset" below returns the whole hand
                            )
                            for k, name in enumerate(sliders.names if sliders else ())
                        ]
                        if sliders is None:
                            gr.Markdown("No named sliders: this model's joints are not NYU's.")
                        with gr.Row():
                            random_btn = gr.Button("Random sample")
                            reset_btn = gr.Button("Reset")
                            from_upload_btn = gr.Button("Start from the uploaded image")
                        latent_note = gr.Markdown()
                        with gr.Accordion(
                            "Principal directions (PCA sliders, in standard deviations)", open=False
                        ):
                            pca_sliders = [
                                gr.Slider(-SLIDER_SIGMAS, SLIDER_SIGMAS, value=s, step=0.05, label=label)
                                for s, label in zip(start.sigmas, ex.labels, strict=True)
                            ]
                        with gr.Accordion(f"Raw latent ({ex.axes.latent_dims} dimensions)", open=False):
                            raw_sliders = [
                                gr.Slider(float(lo), float(hi), value=v, step=0.01, label=f"z[{i}]")
                                for i, (lo, hi, v) in enumerate(
                                    zip(ex.axes.low, ex.axes.high, start.raw, strict=True)
                                )
                            ]
                    with gr.Column(scale=2):
                        latent_plot = gr.Plot(
                            _plot(start.figure),
                            label="The decoded skeleton inside the generated depth, lifted to points (drag to turn)",
                        )
                        with gr.Row():
                            latent_depth = gr.Image(
                                png(start.depth),
                                label="Generated depth (mm about the hand's centre) and skeleton",
                                type="filepath",
                                height=300,
                            )
                            with gr.Column():
                                nearest_gallery = gr.Gallery(
                                    label="Nearest training frames (latent distance · frame)",
                                    columns=3,
                                    height=300,
                                    visible=ex.index is not None,
                                )
                                gr.Markdown(
                                    f"Nearest training frames: not shown, {ex.index_note}.",
                                    visible=ex.index is None,
                                )

                thumbs: dict[int, str] = {}  # index row -> its thumbnail PNG, written once

                def gallery(view) -> list[tuple[str, str]]:
                    if view.neighbours is None:
                        return []
                    items = []
                    for row, distance in zip(view.neighbours.rows, view.neighbours.distances, strict=True):
                        if row not in thumbs:
                            thumbs[row] = png(thumbnail(ex.index, row))
                        items.append((thumbs[row], caption(ex.index, row, distance)))
                    return items

                latent_outputs = [
                    latent_state,
                    *named_sliders,
                    *pca_sliders,
                    *raw_sliders,
                    latent_plot,
                    latent_depth,
                    latent_note,
                    nearest_gallery,
                ]

                def show(z, moved: list | tuple = (), note: str = "") -> dict:
                    """Every latent-tab output for the point z, but the sliders being `moved` (updating
                    them while they are dragged would pull them back to a stale value)."""
                    view = latent_view(ex, z, note)
                    values = [
                        view.latent.tolist(),
                        *view.named,
                        *view.sigmas,
                        *view.raw,
                        _plot(view.figure),
                        png(view.depth),
                        view.readout,
                        gallery(view),
                    ]
                    return {c: v for c, v in zip(latent_outputs, values, strict=True) if c not in moved}

                for name, slider in zip(sliders.names if sliders else (), named_sliders, strict=True):

                    def on_named(z, value, name=name, slider=slider):
                        moved, note = latent_from_named(ex, z, name, value)
                        return show(moved, [slider], note)

                    slider.input(
                        _user_errors(on_named),
                        [latent_state, slider],
                        [c for c in latent_outputs if c is not slider],
                        api_name=slider_id(name),
                        trigger_mode="always_last",
                        show_progress="hidden",
                        **model,
                    )
                gr.on(
                    [s.input for s in pca_sliders],
                    _user_errors(lambda z, *sig: show(latent_from_sliders(ex, z, sig), pca_sliders)),
                    [latent_state, *pca_sliders],
                    [c for c in latent_outputs if c not in pca_sliders],
                    api_name="move_pca",
                    trigger_mode="always_last",
                    show_progress="hidden",
                    **model,
                )
                gr.on(
                    [s.input for s in raw_sliders],
                    _user_errors(lambda *raw: show(np.asarray(raw), raw_sliders)),
                    raw_sliders,
                    [c for c in latent_outputs if c not in raw_sliders],
                    api_name="move_raw",
                    trigger_mode="always_last",
                    show_progress="hidden",
                    **model,
                )
                random_btn.click(
                    lambda: show(random_latent(ex, None)),
                    None,
                    latent_outputs,
                    api_name="random_latent",
                    **model,
                )
                reset_btn.click(
                    lambda: show(start.latent), None, latent_outputs, api_name="reset_latent", **model
                )

                @_user_errors
                def on_from_upload(state):
                    if state is None:
                        raise ValueError(
                            "upload a depth image first (upload tab); its latent is the starting point"
                        )
                    return show(state["latent"])

                from_upload_btn.click(
                    on_from_upload, upload_state, latent_outputs, api_name="latent_from_upload", **model
                )

            # -- walk -----------------------------------------------------------------------------
            with gr.Tab("Walk", id="walk"):
                with gr.Row():
                    mode = gr.Radio(list(WALK_MODES), value=WALK_MODES[0], label="Walk")
                    steps = gr.Slider(
                        2, ex.config.max_walk_steps, value=ex.config.walk_steps, step=1, label="Steps"
                    )
                    seed = gr.Number(0, precision=0, label="Seed")
                with gr.Row():
                    example_a = gr.Dropdown(
                        examples, value=examples[0] if examples else None, label="Example A"
                    )
                    example_b = gr.Dropdown(
                        examples, value=examples[-1] if examples else None, label="Example B"
                    )
                    walk_slider = gr.Dropdown(
                        list(sliders.names if sliders else ()),
                        value=sliders.names[1] if sliders else None,
                        label="Named slider (across its range, from the latent tab's point)",
                    )
                with gr.Accordion("Two uploaded frames (walk between them)", open=False):
                    with gr.Row():
                        walk_file_a = gr.File(
                            label="Frame A (depth image)", type="filepath", elem_id="walk_file_a"
                        )
                        walk_file_b = gr.File(
                            label="Frame B (depth image)", type="filepath", elem_id="walk_file_b"
                        )
                        walk_camera = gr.Dropdown(
                            list(WALK_CAMERAS), value="nyu", label="Camera of both frames"
                        )
                walk_btn = gr.Button("Walk", variant="primary")
                walk_summary = gr.Markdown()
                walk_state = gr.State(None)  # the last walk (latents, poses, crops), for its GIF
                with gr.Row():
                    with gr.Column(scale=3):
                        walk_html = gr.HTML(label="Walk: 3D skeleton in its depth points, and the depth map")
                    with gr.Column(scale=2):
                        smo_plot = gr.Plot(label="Smoothness head vs latent distance (L_smo), per step")
                with gr.Row():
                    with gr.Column(scale=1):
                        gif_btn = gr.Button("Make the walk's GIF")
                        gif_file = gr.File(label="Download the GIF")
                    gif_image = gr.Image(
                        label="Walk (GIF, loops forth and back)", type="filepath", height=300, scale=2
                    )
                for upload in (walk_file_a, walk_file_b):
                    upload.upload(lambda: WALK_MODES[2], None, mode, api_visibility="private")

                @_user_errors
                def on_walk(
                    mode_,
                    steps_,
                    seed_,
                    state,
                    a,
                    b,
                    slider=None,
                    z=None,
                    file_a=None,
                    file_b=None,
                    cam="nyu",
                ):
                    upload_latent = None if state is None else np.asarray(state["latent"])
                    uploads = None
                    if mode_ == "two uploaded frames":
                        uploads = upload_latents(ex, [file_a, file_b], cam)
                    latents = walk_latents(
                        ex,
                        mode_,
                        int(steps_),
                        int(seed_ or 0),
                        upload_latent,
                        a,
                        b,
                        start=None if z is None else np.asarray(z),
                        slider=slider,
                        uploads=uploads,
                    )
                    view = walk_view(ex, latents, PLOTLY_JS_URL)
                    return view.summary, view.animation_html, _plot(view.smoothness), view.walk, None, None

                walk_btn.click(
                    on_walk,
                    [
                        mode,
                        steps,
                        seed,
                        upload_state,
                        example_a,
                        example_b,
                        walk_slider,
                        latent_state,
                        walk_file_a,
                        walk_file_b,
                        walk_camera,
                    ],
                    [walk_summary, walk_html, smo_plot, walk_state, gif_image, gif_file],
                    api_name="walk",
                    **model,
                )

                @_user_errors
                def on_gif(walk):
                    gif = str(walk_gif(ex, walk, fresh_dir()))
                    return gif, gif

                gif_btn.click(on_gif, walk_state, [gif_image, gif_file], api_name="walk_gif", **model)
    return demo
