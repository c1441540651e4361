"""Named defaults in one place: rates, paging, retries, timeouts and limits."""

from __future__ import annotations

DEFAULT_API_URL = "https://api.inaturalist.org/v1"
DEFAULT_DATA_DIR = "inatdl-data"
DEFAULT_API_RATE = 1.0  # requests per second; iNaturalist asks for about 1/s

# Paging
OBSERVATIONS_PER_PAGE = 200  # the API's maximum for /observations
TAXA_PER_PAGE = 200
SPECIES_COUNTS_PER_PAGE = 500  # the API's maximum for /observations/species_counts
TAXA_IDS_PER_REQUEST = 30  # /taxa/{ids} refuses more ids than this
# Taxa asked in one /observations query (taxon_id=a,b,c): 200 ids of up to 8 digits keep
# the URL near 2 kB, far from the 8 kB that servers and proxies commonly refuse.
TAXA_PER_QUERY = 200

# HTTP
CONNECT_TIMEOUT = 10.0  # seconds
READ_TIMEOUT = 30.0  # seconds between bytes, not for the whole body
API_ATTEMPTS = 7  # first try + 6 retries: 1+2+4+8+16+32 s ≈ 1 minute before giving up
PHOTO_ATTEMPTS = 5
BACKOFF_BASE = 1.0  # seconds; doubles each retry
BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 600.0  # never trust a Retry-After longer than this
GONE_STATUSES = frozenset({404, 410})
MAX_REDIRECTS = 5
# The most read at once from a photo body: read1 returns what has arrived, up to this, so a
# slow body is still read (and Ctrl-C noticed) piece by piece as its bytes come.
CHUNK_SIZE = 256 * 1024
SPOOL_BYTES = 1024 * 1024  # of a body held in memory before it is written (download._Spool)
PHOTO_DEADLINE = 600.0  # seconds for one photo body, however slowly it arrives
# A body arriving for longer than this has its .part.info written: a SIGKILL or a crash then
# loses at most this long of each download in flight (Ctrl-C and cut bodies lose nothing).
PART_INFO_AFTER = 0.5  # seconds

# Downloads
DEFAULT_WORKERS = 4
MAX_WORKERS = 64
DEFAULT_SIZE = "medium"
# Longest side in pixels of each size the photo hosts serve.
PHOTO_SIZES = {
    "square": 75,
    "thumb": 100,
    "small": 240,
    "medium": 500,
    "large": 1024,
    "original": 2048,
}
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif")
# A body larger than this is never read: it is not a photo of that size.
MAX_PHOTO_BYTES = {
    "square": 2_000_000,
    "thumb": 2_000_000,
    "small": 5_000_000,
    "medium": 10_000_000,
    "large": 25_000_000,
    "original": 100_000_000,
}

# Judging a photo's size before its request (the byte budget admits it before it is sent).
# Until a size has been downloaded once, a cautious guess: above most real photos of that size.
CAUTIOUS_PHOTO_BYTES = {
    "square": 30_000,
    "thumb": 50_000,
    "small": 150_000,
    "medium": 600_000,
    "large": 2_500_000,
    "original": 10_000_000,
}
SIZE_PERCENTILE = 0.99  # reserve this percentile of the sizes seen, not the mean
SIZE_SAMPLE = 20_000  # photos of the state read for it at the start of a run
HEAD_WITHIN_PHOTOS = 4  # ask HEAD first when the room left is below this many estimates

# Licences: the API's photo_license values; a null license_code is all rights reserved.
API_LICENSES = ("cc0", "cc-by", "cc-by-nc", "cc-by-sa", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd")
# pd (public domain) is a photo's licence code on both routes (the open data writes PD), but
# the API's photo_license list does not know it: it is checked per photo, never sent.
PUBLIC_DOMAIN = "pd"
ALL_LICENSES = (*API_LICENSES, PUBLIC_DOMAIN)
DEFAULT_LICENSES = ALL_LICENSES
QUALITY_GRADES = ("research", "needs_id", "casual")

# Byte budget (iNaturalist: no more than 5 GB of media an hour, 24 GB a day)
DEFAULT_HOURLY_LIMIT = "5GB"
DEFAULT_DAILY_LIMIT = "24GB"
HOUR = 3600.0
DAY = 86400.0
LEASE_FRACTION = 0.01  # bytes reserved on disk at once, as a share of the smaller limit
LEASE_MAX_BYTES = 64_000_000
LEASE_SECONDS = 60.0  # a lease is written as if all its bytes were spent this late

# State
STATE_FILE = "state.sqlite"
LOCK_FILE = "inatdl.lock"
RECORDS_FILE = "records"  # records.csv or records.parquet, by --format
RECORDS_LOCK_FILE = "records.lock"
TAXA_FILE = "taxa.csv"
MANIFEST_FILE = "photos.csv"
PHOTOS_DIR = "photos"
COMMIT_EVERY_PHOTOS = 200
COMMIT_EVERY_SECONDS = 2.0
DRY_RUN_SAMPLE = 5  # photos per taxon whose size is asked (HEAD) in --dry-run
API_GIVE_UP_SECONDS = 120.0  # stop retrying one API request after two minutes, timeouts included
RETRY_NOTICE_SECONDS = 5.0  # an API request retried longer than this is told to the user
