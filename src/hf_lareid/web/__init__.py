"""The web app that `lareid serve` and the Hugging Face Space run: `web.service` (ReIDService: embed, compare and
search, no UI), `web.app` (the gradio page over it; the `serve` extra) and `web.video_tab` (the Video tab over a video
index). Import the module you need: this package imports none of them, so that gradio loads only when a page does."""
