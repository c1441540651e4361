"""The licences iNaturalist photos carry: what each asks of whoever reuses a photo, its
page, and the Hugging Face hub's id for it."""

from __future__ import annotations

#: licence code → (name, Creative Commons slug, what it asks of you)
LICENSE_TERMS = {
    "cc0": ("CC0", "cc0", "nothing: a public domain dedication (credit is still courteous)"),
    "cc-by": ("CC BY", "by", "attribution: credit the photographer, link the licence, say if you changed it"),
    "cc-by-sa": ("CC BY-SA", "by-sa", "attribution; share-alike: adaptations under the same licence"),
    "cc-by-nc": ("CC BY-NC", "by-nc", "attribution; non-commercial use only"),
    "cc-by-nd": ("CC BY-ND", "by-nd", "attribution; no derivatives: do not share altered versions"),
    "cc-by-nc-sa": (
        "CC BY-NC-SA",
        "by-nc-sa",
        "attribution; non-commercial use only; share-alike: adaptations under the same licence",
    ),
    "cc-by-nc-nd": (
        "CC BY-NC-ND",
        "by-nc-nd",
        "attribution; non-commercial use only; no derivatives: do not share altered versions",
    ),
}
PUBLIC_DOMAIN_MARK = "https://creativecommons.org/publicdomain/mark/1.0/"


def licence_url(code: str) -> str:
    """The licence's page (iNaturalist's photos are under version 4.0); the code itself when unknown."""
    if code == "pd":
        return PUBLIC_DOMAIN_MARK
    _, slug, _ = LICENSE_TERMS.get(code, (code, "", ""))
    if not slug:
        return code
    if slug == "cc0":
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    return f"https://creativecommons.org/licenses/{slug}/4.0/"


def hub_licence(code: str) -> str | None:
    """The Hugging Face hub's identifier of the licence, None when it has none."""
    if code == "cc0":
        return "cc0-1.0"
    return f"{code}-4.0" if code in LICENSE_TERMS else None
