"""Text-image models (CLIP-style) for af.load: each tower through af.from_torch."""
from __future__ import annotations

from .exported import image_model
from .text import TextEncoder


class DualEncoder:
    """A text-image model (CLIP, SigLIP-style): ``.text`` a TextEncoder whose outputs add
    ``text_embeds`` (the projected pooled text), ``.vision`` an ImageModel whose outputs add
    ``image_embeds``. Both embeddings live in one space: compare them by cosine."""

    def __init__(self, text, vision):
        self.text, self.vision = text, vision

    def __repr__(self):
        return f"DualEncoder(text={type(self.text).__name__}, vision={type(self.vision).__name__})"


def dual_encoder(path, model, cfg: dict, options: dict, max_programs: int):
    """CLIP-style models: each tower through from_torch, with its projection."""
    import torch

    class Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tower, self.projection, self.config = model.text_model, model.text_projection, model.config.text_config

        def get_input_embeddings(self):
            return self.tower.get_input_embeddings()

        def forward(self, input_ids, attention_mask):
            out = self.tower(input_ids=input_ids, attention_mask=attention_mask)
            return {"last_hidden_state": out.last_hidden_state, "text_embeds": self.projection(out.pooler_output)}

    class Vision(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tower, self.projection = model.vision_model, model.visual_projection

        def forward(self, pixel_values):
            out = self.tower(pixel_values=pixel_values)
            return {"last_hidden_state": out.last_hidden_state, "image_embeds": self.projection(out.pooler_output)}

    vision_cfg = dict(cfg.get("vision_config") or {}, model_type=cfg.get("model_type", "model"))
    text = TextEncoder(path, None, cfg, options, max_programs, torch_model=Text().eval())
    return DualEncoder(text, image_model(Vision().eval(), vision_cfg, options, max_programs))

