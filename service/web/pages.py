"""HTML pages for people (filled in by the pages work)."""

from __future__ import annotations

from pathlib import Path

from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

PAGE_CONTROLLERS: list[type] = []


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=Path(__file__).parent / "templates",
                          engine=JinjaTemplateEngine)
