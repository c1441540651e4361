"""croissant.json: the dataset described in MLCommons Croissant 1.0 (what NeurIPS's datasets
track asks for, what the hub and search engines read): the dataset, its licences and
creators, the format's files, and a record set of image, label, photo id, licence and
attribution. Written from the report, with nothing that changes between runs."""

from __future__ import annotations

import json
from typing import Any

from inatdl import __version__
from inatdl.export.licences import licence_url
from inatdl.export.model import ExportReport
from inatdl.export.writers import Writer

CROISSANT_NAME = "croissant.json"
#: Croissant 1.0's JSON-LD context, as the spec and mlcroissant write it.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
#: The record set's fields: name, Croissant type, what it holds.
FIELDS = (
    ("image", "sc:ImageObject", "The photo as downloaded from iNaturalist."),
    ("label", "sc:Text", "The taxon's accepted scientific name."),
    ("photo_id", "sc:Text", "The photo's iNaturalist id."),
    ("license_code", "sc:Text", "The photo's licence (a Creative Commons code)."),
    ("attribution", "sc:Text", "The credit its photographer asks for, as iNaturalist writes it."),
)


def croissant(report: ExportReport, writer: Writer) -> str:
    """croissant.json's text. Its name does not repeat OUT_DIR's, so two exports of the same
    photos differ only in their cards."""
    parts = writer.croissant()
    record_sets = []
    sources = dict(parts.sources)
    if parts.image_files is not None:
        record_sets.append(_images(parts.image_files, parts.key_in_name))
        sources["image"] = {"field": {"@id": "images/image"}}
    fields = [
        _field(
            f"photos/{name}",
            name,
            parts.label_type if name == "label" else data_type,
            description,
            sources[name],
        )
        for name, data_type, description in FIELDS
    ]
    if parts.image_key is not None:
        key = _field(
            "photos/image_key",
            "image_key",
            "sc:Text",
            "What the photo's image file is found by.",
            parts.image_key,
        )
        fields.append({**key, "references": {"field": {"@id": "images/key"}}})
    record_sets.insert(
        0,
        {
            "@type": "cr:RecordSet",
            "@id": "photos",
            "name": "photos",
            "description": "One record a photo.",
            "key": {"@id": "photos/photo_id"},
            "field": fields,
        },
    )
    licences = [licence_url(entry.code) for entry in report.licences]
    document = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": f"iNaturalist photos of {len(report.taxa):,} taxa ({report.size})",
        "description": (
            f"{report.photos:,} photos of {len(report.taxa):,} taxa from iNaturalist "
            f"({report.observations:,} observations by {len(report.observers):,} observers), "
            f"size {report.size}, as {report.format}; each photo keeps its own licence."
        ),
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "url": "https://www.inaturalist.org",
        "license": licences[0] if len(licences) == 1 else licences,
        "creator": [{"@type": "sc:Person", "name": observer} for observer in report.observers if observer],
        "publisher": {
            "@type": "sc:Organization",
            "name": "iNaturalist",
            "url": "https://www.inaturalist.org",
        },
        "version": "1.0.0",
        "citeAs": (
            "@misc{inaturalist, author = {iNaturalist contributors}, title = {iNaturalist}, "
            "howpublished = {\\url{https://www.inaturalist.org}}}"
        ),
        "keywords": ["iNaturalist", "image classification", "biodiversity", f"inatdl {__version__}"],
        "distribution": parts.distribution,
        "recordSet": record_sets,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _field(id_: str, name: str, data_type: str, description: str, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": id_,
        "name": name,
        "description": description,
        "dataType": data_type,
        "source": source,
    }


def _images(file_set: str, key_in_name: str) -> dict[str, Any]:
    """The record set of image files, joined to the photos by the key in each file's name."""
    name_source = {"fileSet": {"@id": file_set}, "extract": {"fileProperty": "filename"}}
    return {
        "@type": "cr:RecordSet",
        "@id": "images",
        "name": "images",
        "description": "The image files, each known by its name.",
        "key": {"@id": "images/key"},
        "field": [
            _field(
                "images/key",
                "key",
                "sc:Text",
                "The key in the file's name that a photo's record names.",
                {**name_source, "transform": {"regex": key_in_name}},
            ),
            _field(
                "images/image",
                "image",
                "sc:ImageObject",
                "The photo as downloaded from iNaturalist.",
                {"fileSet": {"@id": file_set}, "extract": {"fileProperty": "content"}},
            ),
        ],
    }
