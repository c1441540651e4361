"""Plant each known bug in a copy of src/ and check that the test meant to catch it fails.

    python tests/planted_bugs.py            # every planted bug
    python tests/planted_bugs.py observed_on

Each bug is a one-line change to behaviour users rely on (issue 12). The copy is put first
on PYTHONPATH, so the tests (and the child processes they start) import the planted code;
the working tree is never changed. Exit status 1 when a bug survives its test, or when
a test fails without its bug.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Planted:
    name: str
    path: str  # under src/inatdl
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = [
    Planted(
        "licence_ignored_per_photo",  # only the API's per-observation filter is left
        "observations.py",
        "if not license_code or license_code not in licenses:",
        "if not license_code:",
        ("tests/test_manifest.py::test_only_photos_of_the_asked_licences_beside_photos_of_others",),
    ),
    Planted(
        "observed_on_empty",  # observed_on is always empty in photos.csv
        "observations.py",
        '"observed_on": as_text(observation.get("observed_on")),',
        '"observed_on": None,',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "location_string_ignored",  # no coordinates for observations that have only `location`
        "observations.py",
        'lat, lng = str(observation["location"]).split(",")',
        'lat, lng = str(observation["geojson"]).split(",")',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "geojson_read_as_lat_lng",  # geojson is [longitude, latitude]
        "observations.py",
        'lng, lat = observation["geojson"]["coordinates"][:2]',
        'lat, lng = observation["geojson"]["coordinates"][:2]',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "one_worker_only",  # --workers N downloads one photo at a time
        "pool.py",
        "[threading.Event() for _ in range(workers)]",
        "[threading.Event() for _ in range(1)]",
        ("tests/test_cli.py::test_workers_download_concurrently",),
    ),
    Planted(
        "every_page_listed_before_downloading",
        "api_listing.py",
        "for page in observation_pages(self.client, params, query.after_id, remaining):",
        "for page in list(observation_pages(self.client, params, query.after_id, remaining)):",
        ("tests/test_fetch.py::test_downloads_start_while_the_next_page_is_fetched",),
    ),
    Planted(
        "tls_unchecked",
        "client.py",
        "session.max_redirects = MAX_REDIRECTS",
        "session.max_redirects, session.verify = MAX_REDIRECTS, False",
        ("tests/test_faults.py::test_every_request_verifies_tls",),
    ),
    Planted(
        "worker_error_swallowed",  # a state write that fails in a worker goes unnoticed
        "pool.py",
        "self._fail(exc)",
        "pass",
        ("tests/test_faults.py::test_a_full_disk_under_the_state_file_stops_the_run_and_loses_nothing",),
    ),
    Planted(
        "observation_without_id_trusted",
        "observations.py",
        '[o for o in listed if isinstance(o, dict) and as_id(o.get("id"))]',
        "[o for o in listed if isinstance(o, dict)]",
        ("tests/test_faults.py::test_odd_api_json_is_survived_and_loses_nothing",),
    ),
    Planted(
        "budget_wait_ignores_ctrl_c",
        "budget.py",
        "if self.clock.wait(self.cancel, max(0.0, until - self.clock.now()) + 0.001):",
        "if self.clock.wait(threading.Event(), max(0.0, until - self.clock.now()) + 0.001):",
        ("tests/test_budget_sent.py::test_ctrl_c_ends_a_wait_for_the_budget",),
    ),
    Planted(
        "bytes_sent_but_unread_not_counted",  # a body left unread is counted as nothing
        "download.py",
        "return self.redirects + max(self.received, reserved if self.length is None else self.length)",
        "return self.redirects + self.received",
        ("tests/test_budget_sent.py::test_every_byte_a_host_sent_is_in_the_ledger",),
    ),
    Planted(
        "failed_attempt_not_counted",
        "download.py",
        "sent = body.sent(ticket.bytes)",
        "sent = body.received if body.ended_cleanly else 0",
        ("tests/test_budget_sent.py::test_every_byte_a_host_sent_is_in_the_ledger",),
    ),
    Planted(
        "no_stop_check_in_a_slow_body",
        "download.py",
        "                    if self.stop.is_set():\n                        raise _Dropped",
        "                    if False:\n                        raise _Dropped",
        ("tests/test_budget_sent.py::test_a_slow_body_stops_at_ctrl_c",),
    ),
    Planted(
        "broken_pipe_exit_code_by_timing",  # `inatdl ... | head`: 0 or 1 as the reader leaves
        "output/console.py",
        "sys.stdout = _ReaderMayLeave(sys.stdout)",
        "sys.stdout = sys.stdout",
        (
            "tests/test_cli.py::test_a_reader_that_stops_reading_ends_the_run_quietly",
            "tests/test_cli_usage.py::test_a_reader_that_reads_a_few_lines_and_leaves_gets_the_exit_code_of_the_work",
        ),
    ),
    Planted(
        "size_without_unit_taken_as_bytes",  # --hourly-limit 10: a run waiting an hour for 10 bytes
        "units.py",
        "unit = match.group(2).lower() if match else None",
        'unit = (match.group(2).lower() or "b") if match else None',
        ("tests/test_fetch.py::test_bad_options_are_usage_errors",),
    ),
    Planted(
        "progress_total_of_the_pages_so_far",  # the bar at 95 % with one page of eight done
        "output/progress.py",
        "return self.listed + round(self.pages_left * self.from_pages / self.pages)",
        "return self.listed",
        ("tests/test_output.py::test_the_photos_bar_counts_the_whole_job_from_its_first_page",),
    ),
    Planted(
        "table_libraries_loaded_at_start_up",  # every `photos fetch` pays for pandas and pyarrow
        "cli/photos.py",
        "from inatdl.taxa import load_resolved_taxa",
        "from inatdl.taxa import load_resolved_taxa\nimport inatdl.records_fetch",
        ("tests/test_cli_usage.py::test_photos_fetch_starts_without_the_table_libraries",),
    ),
    Planted(
        "global_option_refused_after_the_command",  # taxa resolve x.csv --data-dir y: No such option
        "cli/__init__.py",
        "return super().parse_args(ctx, _globals_first(self, ctx, args))",
        "return super().parse_args(ctx, args)",
        ("tests/test_cli_usage.py::test_global_options_are_taken_after_the_command_too",),
    ),
    Planted(
        "export_silent_about_unlisted_photos",  # a killed fetch's photos left out without a word
        "export/selection.py",
        "report.unlisted_files = count_unlisted(data_dir, size, read.listed.sorted())",
        "report.unlisted_files = 0",
        ("tests/test_export.py::test_photos_a_killed_fetch_did_not_list_are_told_then_exported",),
    ),
    Planted(
        "variety_listed_later_left_with_its_species",  # its photos stay in the species' folder
        "api_listing.py",
        "homes = {pid: (taxon, path) for pid, (status, taxon, path) in recorded.items() if status == DONE}",
        "homes: dict[int, tuple[int, str]] = {}",
        (
            "tests/test_batching.py::"
            "test_a_variety_listed_after_its_species_was_fetched_gets_its_photos_without_a_download",
        ),
    ),
    Planted(
        "limit_stop_skips_photos_on_disk",  # a killed run's complete photos wait for the window
        "pool.py",
        "if not self.stop.dropping and (there := self.downloader.already_there(job)) is not None:",
        "if False and (there := self.downloader.already_there(job)) is not None:",
        ("tests/test_budget_sent.py::test_at_a_full_window_photos_complete_on_disk_are_still_recorded",),
    ),
    Planted(
        "export_write_error_says_data_dir",  # advice about the wrong folder
        "export/outdir.py",
        'OTHER_OUT_DIR = "export into another folder"',
        'OTHER_OUT_DIR = "use --data-dir"',
        ("tests/test_export.py::test_an_out_dir_without_permission_names_out_dir_not_the_data_dir",),
    ),
    Planted(
        "min_per_taxon_leaves_out_exactly_n",  # issue 22: a taxon with exactly N photos left out
        "export/selection.py",
        "small = per_taxon < minimum",
        "small = per_taxon <= minimum",
        ("tests/test_export_formats.py::test_min_per_taxon_keeps_a_taxon_with_exactly_that_many",),
    ),
    Planted(
        "tar_members_stamped_with_the_clock",  # the same export twice: different tars
        "export/writers/webdataset.py",
        'header[136:148] = b"%011o\\0" % FIXED_MTIME',
        'header[136:148] = b"%011o\\0" % int(__import__("time").time())',
        ("tests/test_export_formats.py::test_webdataset_shards_hold_every_photo_as_downloaded",),
    ),
    Planted(
        "tar_sample_json_measured_without_its_escapes",  # shards past --shard-size
        "export/writers/webdataset.py",
        """_ESCAPED = re.compile(r'[\\x00-\\x1f"\\\\]')""",
        """_ESCAPED = re.compile(r'["\\\\]')""",
        (
            "tests/test_export_exact.py::test_tar_shards_fill_to_the_shard_size_whatever_characters_the_rows_hold",
        ),
    ),
    Planted(
        "parquet_row_group_closed_at_the_byte_bound_alone",  # groups of one big photo
        "export/writers/parquet.py",
        "enough = end - start >= ROW_GROUP_PHOTOS and images >= ROW_GROUP_BYTES",
        "enough = end - start >= ROW_GROUP_PHOTOS or images >= ROW_GROUP_BYTES",
        (
            "tests/test_export_formats.py::"
            "test_parquet_row_groups_hold_a_least_of_photos_and_grow_to_a_bound_of_image_bytes",
        ),
    ),
    Planted(
        "parquet_layout_change_kept_old_files",  # an update keeps files of the older layout
        "export/writers/parquet.py",
        "    version = 3",
        "    version = 2",
        ("tests/test_export_formats.py::test_an_update_rewrites_parquet_files_of_an_older_layout_whole",),
    ),
    Planted(
        "shard_kept_though_its_photos_changed",  # an update leaves old photos in a shard
        "export/writers/_shards.py",
        "        for rows in selection.raw(selection.between(shard.start, shard.stop)):\n"
        "            digest.update(rows)\n"
        '        for numbers in ("label", "size", "mtime_ns"):',
        '        for numbers in ("label",):',
        ("tests/test_export_formats.py::test_an_update_rewrites_only_the_shards_whose_photos_changed",),
    ),
    Planted(
        "shard_kept_though_a_row_changed",  # same photos and files, a renamed attribution kept stale
        "export/writers/_shards.py",
        "            digest.update(rows)",
        "            pass",
        ("tests/test_export_rows.py::test_a_row_changed_in_photos_csv_rewrites_its_shard_alone",),
    ),
    Planted(
        "last_row_without_line_break_run_into_the_next",  # photos.csv's last row read back wrong
        "export/rows.py",
        'return b"".join(row if row.endswith(b"\\n") else row + b"\\n" for row in rows)',
        'return b"".join(rows)',
        ("tests/test_export_rows.py::test_every_format_holds_each_row_exactly_as_photos_csv_writes_it",),
    ),
    Planted(
        "max_per_taxon_without_rounds",  # every photo of the first groups kept, not one a group first
        "export/selection.py",
        'with_rounds = _ranked(by_group, ("label", "group"), "round")',
        "with_rounds = by_group",
        (
            "tests/test_export_rows.py::test_max_per_taxon_keeps_the_photos_the_rule_names",
            "tests/test_export.py::test_min_and_max_per_taxon",
        ),
    ),
    Planted(
        "unlisted_counts_listed_photos",  # every photo on disk told as left out by a killed fetch
        "export/selection.py",
        "listed.append(hash(relative))",
        "pass",
        ("tests/test_export.py::test_photos_a_killed_fetch_did_not_list_are_told_then_exported",),
    ),
    Planted(
        "worker_waits_for_the_state",  # every worker stalls while a commit or a page is written
        "state.py",
        "if due and self._lock.acquire(blocking=False):",
        "if due and self._lock.acquire():",
        ("tests/test_decisions.py::test_recording_a_photo_done_never_waits_for_the_state",),
    ),
    Planted(
        "large_body_held_in_memory",  # a 100 MB original photo held whole, per worker
        "parts.py",
        "if self.streaming or self.held_bytes >= SPOOL_BYTES:",
        "if self.streaming:",
        ("tests/test_budget_sent.py::test_a_large_body_is_written_as_it_comes_not_held_in_memory",),
    ),
    Planted(
        "photos_on_disk_fetched_again_without_state",  # untracked files not looked for
        "feed.py",
        "on_disk = row.path in self.untracked",
        "on_disk = False",
        ("tests/test_resume.py::test_photos_on_disk_are_found_again_after_the_state_file_is_moved_away",),
    ),
    Planted(
        "redirect_bodies_not_counted",
        "download.py",
        "body.redirects += _redirect_bytes(response)",
        "_redirect_bytes(response)",
        ("tests/test_budget_sent.py::test_the_bodies_of_redirects_are_counted",),
    ),
    Planted(
        "bad_redirect_location_ends_the_run",  # "unexpected ValueError ... please report it"
        "download.py",
        "except ValueError as exc:  # not a URL",
        "except KeyError as exc:  # not a URL",
        ("tests/test_faults.py::test_a_redirect_to_no_url_fails_that_photo_not_the_run",),
    ),
    Planted(
        "stop_dropped_with_the_jobs",  # a worker waits for a job forever: the run hangs
        "pool.py",
        "self._jobs = deque(job for job in self._jobs if job is _END)",
        "self._jobs = deque()",
        ("tests/test_fetch.py::test_a_run_stopping_with_a_full_queue_keeps_every_workers_stop",),
    ),
    Planted(
        "photo_moved_onto_itself_deleted",  # a subgenus named as its genus: its photos unlinked
        "feed.py",
        "if move.old_path == row.path:",
        "if False:",
        ("tests/test_batching.py::test_a_subgenus_named_as_its_genus_keeps_the_photos_it_takes_over",),
    ),
    Planted(
        "photo_without_a_file_downloaded",  # the API's default image credited to the photographer
        "naming.py",
        'PLACEHOLDER_FOLDERS = ("/assets/", "/attachment_defaults/")',
        'PLACEHOLDER_FOLDERS = ("/assets/",)',
        ("tests/test_real_answers.py::test_a_photo_without_a_file_is_a_placeholder_never_downloaded",),
    ),
    Planted(
        "species_counts_page_size_assumed",  # a server paging smaller: taxa observed stops at page 1
        "observed_taxa.py",
        "page_size = _page_size(data, len(listed))",
        "page_size = SPECIES_COUNTS_PER_PAGE",
        ("tests/test_real_answers.py::test_taxa_observed_pages_as_the_server_does_when_it_pages_smaller",),
    ),
    Planted(
        "unreachable_api_blamed_on_the_names",  # "check the names" after taxa resolve had no network
        "taxa.py",
        "    if not seen and unasked:",
        "    if not seen and False:",
        ("tests/test_real_answers.py::test_names_not_asked_for_want_of_a_network_are_not_blamed",),
    ),
    Planted(
        "every_name_asked_of_an_unreachable_api",  # minutes of retries per name, all in vain
        "taxa.py",
        "        if row is None and not problem and not interrupted:",
        "        if row is None and not interrupted:",
        ("tests/test_real_answers.py::test_names_not_asked_for_want_of_a_network_are_not_blamed",),
    ),
    Planted(
        "matched_term_ignored",  # a nominate trinomial iNaturalist matches exactly: "not found"
        "taxa.py",
        "matched = matched_by_another_name(input_name, found) if choice.match == NOT_FOUND else []",
        "matched: list[JSON] = []",
        (
            "tests/test_real_answers.py::"
            "test_a_name_matched_through_another_scientific_name_is_followed_as_a_synonym",
        ),
    ),
    Planted(
        "common_name_followed_as_a_synonym",  # a common name in French taken for a taxon
        "taxa.py",
        'scientific = entry.get("locale") == "sci" or entry.get("lexicon") in SCIENTIFIC_LEXICONS',
        "scientific = True",
        (
            "tests/test_real_answers.py::"
            "test_a_name_matched_through_another_scientific_name_is_followed_as_a_synonym",
        ),
    ),
    Planted(
        "observation_page_size_assumed",  # a server paging smaller: photos fetch stops at page 1
        "observations.py",
        "            done = total <= len(listed)",
        "            done = len(listed) < OBSERVATIONS_PER_PAGE",
        ("tests/test_real_answers.py::test_photos_fetch_pages_on_when_the_server_pages_smaller",),
    ),
    Planted(
        "refresh_offline_loses_taxa_csv",  # --refresh without a network wipes every answer
        "taxa.py",
        "row = _reused(name, previous[key]) if key in previous else TaxonRow(name, match=ERROR)",
        "row = TaxonRow(name, match=ERROR)",
        ("tests/test_real_answers.py::test_refresh_without_a_network_keeps_what_taxa_csv_knew",),
    ),
    Planted(
        "bool_taken_for_an_int",  # {"id": true} becomes observation 1
        "jsonvalues.py",
        "return value if isinstance(value, int) and not isinstance(value, bool) else None",
        "return value if isinstance(value, int) else None",
        (
            "tests/test_decisions.py::test_the_walk_drops_observations_without_a_usable_id",
            "tests/test_jsonvalues.py",
        ),
    ),
    Planted(
        "split_name_takes_the_least_observed",  # an inactive name split in two: the wrong taxon
        "taxa.py",
        "current.sort(key=_observations, reverse=True)",
        "current.sort(key=_observations)",
        ("tests/test_real_answers.py::test_a_name_split_into_several_taxa_takes_the_most_observed",),
    ),
    Planted(
        "observation_uuid_empty",  # photos.csv's observation_uuid always empty
        "observations.py",
        '"observation_uuid": as_text(observation.get("uuid")),',
        '"observation_uuid": None,',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "private_accuracy_shown",  # the observer's accuracy, not the public (blurred) one
        "observations.py",
        '"positional_accuracy": _metres(observation.get("public_positional_accuracy")),',
        '"positional_accuracy": _metres(observation.get("positional_accuracy")),',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "obscured_flag_ignored",  # only the geoprivacy fields are read
        "observations.py",
        'if observation.get("obscured") is True or any(value in _HIDDEN for value in hidden):',
        "if any(value in _HIDDEN for value in hidden):",
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "taxon_geoprivacy_ignored",  # a threatened taxon's blurred coordinates taken as points
        "observations.py",
        'hidden = (observation.get("geoprivacy"), observation.get("taxon_geoprivacy"))',
        'hidden = (observation.get("geoprivacy"),)',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "unknown_obscured_said_false",  # an answer that says nothing reads as not obscured
        "observations.py",
        'return False if observation.get("obscured") is False else None',
        "return False",
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "obscured_written_as_1_0",  # photos.csv says 1/0, not true/false
        "manifest.py",
        """"coordinates_obscured": "CASE coordinates_obscured WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",""",
        '"coordinates_obscured": "coordinates_obscured",',
        ("tests/test_manifest.py::test_every_manifest_column_holds_the_servers_data",),
    ),
    Planted(
        "old_state_not_migrated",  # a previous release's data dir: the fetch fails on its state
        "migrations.py",
        "for step in range(version + 1, SCHEMA_VERSION + 1):",
        "for step in range(SCHEMA_VERSION + 1, SCHEMA_VERSION + 1):",
        ("tests/test_upgrade.py::test_the_first_fetch_upgrades_an_old_data_dir_in_place",),
    ),
    Planted(
        "migrated_version_not_recorded",  # every run rebuilds the photos table again
        "migrations.py",
        """yield f"UPDATE meta SET value='{SCHEMA_VERSION}' WHERE key='schema_version'\"""",
        "return",
        ("tests/test_upgrade.py::test_the_first_fetch_upgrades_an_old_data_dir_in_place",),
    ),
    Planted(
        "upgrade_not_one_transaction",  # a failed step leaves a half-upgraded state file
        "state.py",
        "        with self.transaction():\n            for statement in upgrade_statements(version):",
        "        if True:\n            for statement in upgrade_statements(version):",
        ("tests/test_upgrade.py::test_an_upgrade_that_fails_leaves_the_state_as_it_was",),
    ),
    Planted(
        "open_data_photos_never_retried",  # a NULL observation id never passes the keyset walk
        "state.py",
        "for key, order in (without_id, by_id):",
        "for key, order in (by_id,):",
        ("tests/test_upgrade.py::test_photos_without_an_observation_id_are_retried_too",),
    ),
    Planted(
        "split_types_by_pandas_dtype",  # True beside empty cells (object) taken for another type
        "export/writers/imagefolder.py",
        "return {c: pd.api.types.infer_dtype(read[c], skipna=True) for c in columns}",
        "return {c: str(read[c].dtype) for c in columns}",
        ("tests/test_upgrade.py::test_a_split_export_of_an_upgraded_data_dir_keeps_coordinates_obscured",),
    ),
    Planted(
        "card_counts_unobscured",  # the card counts the photos whose coordinates are precise
        "manifest.py",
        'obscured.get("true", 0), obscured.get("", 0), sum(obscured.values())',
        'obscured.get("false", 0), obscured.get("", 0), sum(obscured.values())',
        ("tests/test_upgrade.py::test_an_export_carries_the_new_columns_and_counts_obscured_photos",),
    ),
    Planted(
        "photo_retry_after_ignored",  # issue 22: a photo asking for 20 s retried in under 1 s
        "download.py",
        'return Action(RETRY, problem=f"HTTP {status}", retry_after=retry_after)',
        'return Action(RETRY, problem=f"HTTP {status}")',
        ("tests/test_photo_host.py::test_a_photo_hosts_retry_after_is_honoured",),
    ),
    Planted(
        "photo_backoff_not_growing",  # a photo host failing in a row is asked again every second
        "download.py",
        "self.stop, backoff_delay(number, failure.retry_after)",
        "self.stop, backoff_delay(1, failure.retry_after)",
        ("tests/test_photo_host.py::test_a_photo_failing_four_times_in_a_row_backs_off_then_completes",),
    ),
    Planted(
        "limit_too_small_fails_each_photo",  # issue 22: a line a photo, "run the same command again"
        "download.py",
        "except _Refused as refused:",
        "except Exception as refused:",
        ("tests/test_photo_host.py::test_a_limit_smaller_than_a_photo_stops_at_once_in_one_line",),
    ),
    Planted(
        "photo_larger_than_the_limit_read",  # a body no limit holds is read, over the limit
        "download.py",
        "if body.length > self.budget.largest:",
        "if False:",
        ("tests/test_photo_host.py::test_a_photo_announced_larger_than_the_limit_is_left_unread",),
    ),
    Planted(
        "sizes_seen_ignored_at_a_small_limit",  # issue 22: the run waits an hour for nothing
        "budget.py",
        "if smallest > budget.largest:",
        "if False:",
        ("tests/test_photo_host.py::test_a_limit_smaller_than_the_photos_downloaded_before_asks_no_host",),
    ),
    Planted(
        "unseen_size_over_a_spent_limit_waits",  # the run waits an hour, then overruns the limit
        "budget.py",
        "if self.sizes.estimate(size) > budget.largest:",
        "if False:",
        (
            "tests/test_photo_host.py::test_a_limit_already_spent_on_another_size_stops_at_once_not_after_an_hour",
        ),
    ),
    Planted(
        "cut_body_started_again",  # a host cutting or resetting bodies in a row: sent again whole
        "download.py",
        "keep = partial.validator is not None  # what came is good: ask for the rest",
        "keep = False  # what came is good: ask for the rest",
        ("tests/test_photo_host.py::test_a_photo_cut_or_reset_four_times_in_a_row_completes",),
    ),
    Planted(
        "second_ctrl_c_loses_photos_csv",  # a Ctrl-C while the run stops: no photos.csv (issue 22)
        "fetch.py",
        "        except KeyboardInterrupt:  # raised by a step itself",
        "        except ZeroDivisionError:  # raised by a step itself",
        ("tests/test_stop.py::test_a_second_ctrl_c_while_the_run_stops_still_leaves_photos_csv",),
    ),
    Planted(
        "photos_csv_always_rewritten",  # a rerun of a million photos writes the same file again
        "manifest.py",
        'if _written(store, path) == {**_identity(path), "listed": listed}:',
        "if False:",
        ("tests/test_fetch.py::test_photos_csv_is_left_as_it_is_when_nothing_changed",),
    ),
    Planted(
        "photos_csv_file_not_looked_at",  # a deleted or edited photos.csv is left so
        "manifest.py",
        'if _written(store, path) == {**_identity(path), "listed": listed}:',
        'if (_written(store, path) or {}).get("listed") == listed:',
        ("tests/test_fetch.py::test_photos_csv_deleted_or_edited_is_written_again",),
    ),
    Planted(
        "deleted_photo_not_noticed",  # a photo file deleted by hand is never fetched again
        "sweep.py",
        "missing = done - present",
        "missing = done - present - done",
        ("tests/test_fetch.py::test_deleted_file_is_fetched_again",),
    ),
    Planted(
        "open_data_photo_twice",  # a photo under two observations is listed (and fetched) twice
        "opendata/plan.py",
        "QUALIFY row_number() OVER (PARTITION BY p.photo_id ORDER BY o.observation_uuid) = 1",
        "QUALIFY true",
        ("tests/test_opendata_plan.py::test_a_photo_under_two_observations_is_planned_once",),
    ),
    Planted(
        "open_data_cap_unstable",  # --max-per-taxon keeps the highest photo ids, not the lowest
        "opendata/plan.py",
        "row_number() OVER (PARTITION BY c.listed_id ORDER BY c.photo_id) AS nth",
        "row_number() OVER (PARTITION BY c.listed_id ORDER BY c.photo_id DESC) AS nth",
        ("tests/test_opendata_plan.py::test_cursor_and_cap_keep_the_lowest_photo_ids",),
    ),
    Planted(
        "open_data_least_specific_taxon",  # observations go to the least specific listed taxon
        "opendata/plan.py",
        "arg_max(s.step, s.depth)",
        "arg_min(s.step, s.depth)",
        ("tests/test_opendata_plan.py::test_descendants_go_to_the_most_specific_listed_taxon",),
    ),
    Planted(
        "plan_scratch_file_left",  # the engine's sorted copy of a plan stays in duckdb-tmp
        "opendata/plan.py",
        "        scratch.unlink(missing_ok=True)  # read whole, or the plan given up",
        "        pass",
        (
            "tests/test_opendata_handoff.py::"
            "test_the_scratch_file_of_an_open_data_plan_is_removed_even_when_writing_fails",
        ),
    ),
    Planted(
        "public_domain_credited_as_cc",  # pd photos attributed like a CC licence
        "opendata/plan.py",
        "WHEN 'pd' THEN r.holder",
        "WHEN 'pd-not' THEN r.holder",
        ("tests/test_opendata_plan.py::test_every_column_as_photos_csv_writes_it",),
    ),
    Planted(
        "sync_downloads_unchanged_tables",  # ETag/Last-Modified ignored: every sync downloads all
        "opendata/sync.py",
        "        if is_current(folder, remote):",
        "        if False:",
        ("tests/test_opendata_sync.py::test_an_unchanged_dump_is_neither_downloaded_nor_copied_again",),
    ),
    Planted(
        "sync_no_range_resume",  # a cut table download starts over instead of resuming
        "opendata/download.py",
        'headers["Range"] = f"bytes={offset}-"',
        'headers["X-Range"] = f"bytes={offset}-"',
        ("tests/test_opendata_sync.py::test_a_cut_download_resumes_with_range",),
    ),
    Planted(
        "sync_unlocked",  # two syncs on one open-data dir write the same parts and copy
        "opendata/sync.py",
        'with DataDirLock(folder, SYNC_LOCK_FILE, "or use another --open-data-dir"):',
        'with open(folder / SYNC_LOCK_FILE, "a"):',
        ("tests/test_opendata_sync_faults.py::test_a_second_sync_on_the_same_folder_is_refused_in_one_line",),
    ),
    Planted(
        "sync_part_dropped_on_failure",  # a full disk or Ctrl-C mid-table: the next sync starts over
        "opendata/download.py",
        "    if part_bytes(folder, remote) == 0:",
        "    if True:",
        (
            "tests/test_opendata_sync_faults.py::test_a_full_disk_mid_download_keeps_the_part_and_the_previous_copy",
            "tests/test_opendata_sync_faults.py::test_ctrl_c_mid_download_keeps_the_part_and_the_next_sync_resumes_with_range",
        ),
    ),
    Planted(
        "open_data_no_move_to_variety",  # photos stay in the species' folder once a variety is listed
        "opendata/source.py",
        'if row["photo_id"] in recorded and (home is None or home[0] == taxon.taxon_id):',
        'if row["photo_id"] in recorded:',
        ("tests/test_opendata_fetch.py::test_a_variety_listed_since_takes_its_downloaded_photos_without_a_download",),
    ),
    Planted(
        "open_data_refetches_recorded_photos",  # a photo already in the state is listed again
        "opendata/source.py",
        'if row["photo_id"] in recorded and (home is None or home[0] == taxon.taxon_id):',
        "if False:",
        (
            "tests/test_opendata_fetch.py::test_photos_fetched_from_the_api_are_not_fetched_again_from_the_open_data",
        ),
    ),
    Planted(
        "records_cursor_ignored",  # a rerun of records fetch asks for every observation again
        "records_fetch.py",
        'return kept, {key: old.get(key, 0) for key in keys}, ""',
        'return kept, fresh, ""',
        ("tests/test_records.py::test_a_rerun_asks_only_for_newer_observations",),
    ),
    Planted(
        "records_duplicated",  # an observation under two listed taxa is two rows
        "records_fetch.py",
        'table = table.drop_duplicates("catalogNumber", keep="last")',
        "table = table",
        ("tests/test_records.py::test_an_observation_under_two_listed_taxa_is_one_row",),
    ),
    Planted(
        "records_walks_stay_apart",  # walks that ended at different ids never share a query again
        "records_fetch.py",
        "self.cursors.update(dict.fromkeys(keys, self.seen_up_to))",
        "pass",
        (
            "tests/test_records.py::"
            "test_a_taxon_added_to_taxa_csv_is_walked_from_the_start_the_others_from_their_cursor",
        ),
    ),
    Planted(
        "records_lost_on_api_failure",  # an API failure part-way throws away the pages fetched
        "records_fetch.py",
        "except (KeyboardInterrupt, ApiError) as exc:",
        "except KeyboardInterrupt as exc:",
        ("tests/test_records.py::test_an_api_failure_keeps_what_was_fetched_and_the_rerun_goes_on",),
    ),
    Planted(
        "threatened_taxon_not_withheld",  # coordinates obscured for a threatened taxon said as exact
        "darwin_core.py",
        'if geoprivacy != "obscured" and observation.get("obscured") is not True:',
        'if geoprivacy != "obscured":',
        ("tests/test_records.py::test_the_founding_export_field_by_field",),
    ),
    Planted(
        "licence_url_case_sensitive",  # CC-BY-NC (as the open data writes it) left as a code
        "darwin_core.py",
        "return LICENSE_URLS.get(text.lower(), text)",
        "return LICENSE_URLS.get(text, text)",
        ("tests/test_darwin_core.py::test_the_licence_as_gbif_writes_it",),
    ),
    Planted(
        "event_date_without_time",  # eventDate is the day even when the time is known
        "darwin_core.py",
        '"eventDate": _text(observation.get("time_observed_at")) or _text(observation.get("observed_on")),',
        '"eventDate": _text(observation.get("observed_on")),',
        ("tests/test_records.py::test_the_founding_export_field_by_field",),
    ),
    Planted(
        "sizes_walked_one_by_one",  # --size square,medium,original pages the observations 3 times
        "source.py",
        "if isinstance(source, SizesInOneWalk):",
        "if False:",
        ("tests/test_sizes.py::test_three_sizes_from_one_walk",),
    ),
    Planted(
        "repeated_size_keeps_the_last",  # --size medium --size small: only small
        "cli/photos.py",
        "tuple(dict.fromkeys(size for listed in sizes for size in listed)),",
        "sizes[-1],",
        ("tests/test_sizes.py::test_repeated_size_options_combine",),
    ),
    Planted(
        "dry_run_sizes_share_one_estimate",  # squares estimated at the size of originals
        "dry_run.py",
        "taxa = [taxon for taxon in report.taxa if taxon.size == size]",
        "taxa = report.taxa",
        ("tests/test_sizes.py::test_dry_run_counts_photos_and_bytes_per_size",),
    ),
    Planted(
        "cap_cursor_past_a_partly_kept_observation",  # --max-per-taxon 1 then 2: its 2nd photo never
        "api_listing.py",
        "routed.drops[taxon_id] = before",
        'routed.drops[taxon_id] = fields["observation_id"]',
        ("tests/test_caps.py::test_a_cap_raised_after_it_fell_inside_an_observation_gets_the_rest_of_it",),
    ),
    Planted(
        "cap_forgets_failed_photos",  # after a failure, a rerun ends with 3 photos under a cap of 2
        "feed.py",
        "held = done[taxon_id] + counts.get(PENDING, 0) + counts.get(FAILED, 0)",
        "held = done[taxon_id] + counts.get(PENDING, 0)",
        ("tests/test_caps.py::test_a_photo_that_failed_counts_under_the_cap_when_it_is_retried",),
    ),
    Planted(
        "retry_paging_key_swapped",  # only the first 1,000 photos left of a taxon are retried
        "state.py",
        "after = tuple(rows[-1][3:])",
        "after = tuple(reversed(rows[-1][3:]))",
        ("tests/test_caps.py::test_more_than_a_thousand_photos_left_by_a_dry_run_are_all_downloaded",),
    ),
    Planted(
        "had_counts_this_runs_downloads",  # the summary's columns no longer add up
        "report.py",
        "self.had = done - self.downloaded",
        "self.had = done",
        ("tests/test_summary.py::test_the_columns_add_up_over_a_dry_run_an_interrupted_run_and_reruns",),
    ),
    Planted(
        "left_counts_failed_photos_twice",
        "report.py",
        "self.left = to_do - self.failed",
        "self.left = to_do",
        ("tests/test_caps.py::test_a_photo_that_failed_counts_under_the_cap_when_it_is_retried",),
    ),
    Planted(
        "skips_reported_only_by_the_run_that_paged_them",  # a dry run's skips gone from the real run
        "state.py",
        "            if skips:",
        "            if False:",
        ("tests/test_summary.py::test_the_columns_add_up_over_a_dry_run_an_interrupted_run_and_reruns",),
    ),
    Planted(
        "photos_csv_kept_after_a_move",  # a variety listed later: photos.csv keeps the species
        "state.py",
        "row.photo_id, row.size),\n            )\n            self._photos_csv_outdated()",
        "row.photo_id, row.size),\n            )",
        (
            "tests/test_batching.py::"
            "test_a_variety_listed_after_its_species_was_fetched_gets_its_photos_without_a_download",
        ),
    ),
    Planted(
        "photos_csv_fingerprint_ignored",  # a state changed by an older inatdl: photos.csv stays
        "manifest.py",
        "listed = _fingerprint(store)",
        "listed = []",
        ("tests/test_fetch.py::test_photos_csv_follows_a_state_changed_by_an_older_inatdl",),
    ),
    Planted(
        "if_range_not_sent",  # a changed photo resumed from its old half: a file of two photos
        "download.py",
        'headers["If-Range"] = partial.validator',
        "pass",
        ("tests/test_budget_sent.py::test_a_body_that_changed_is_fetched_again_whole",),
    ),
    Planted(
        "page_photos_told_only_as_queued",  # the bar's total short while the queue holds them back
        "api_listing.py",
        "progress.listed(sum(len(batch.rows) for _, batch in batches))",
        "pass",
        ("tests/test_output.py::test_the_photos_bar_total_is_the_job_at_every_photo_after_the_last_page",),
    ),
    Planted(
        "retries_left_out_of_the_bar",  # the photos of an earlier run retried: not in the total
        "feed.py",
        "progress.listed(queued_again)",
        "pass",
        ("tests/test_output.py::test_the_photos_bar_total_is_the_job_at_every_photo_after_the_last_page",),
    ),
    Planted(
        "sizes_seen_over_a_spent_limit_guessed",  # a photo judged by the capped estimate: no HEAD
        "budget.py",
        "if self.sizes.estimate(size) > budget.largest:",
        "if not smallest and self.sizes.estimate(size) > budget.largest:",
        (
            "tests/test_photo_host.py::test_sizes_seen_mostly_over_a_spent_limit_ask_the_photos_own_size",
        ),
    ),
    Planted(
        "records_replaced_by_an_empty_filter",  # a filter matching nothing empties records.csv
        "records_fetch.py",
        "if table.empty:",
        "if False:",
        ("tests/test_records.py::test_a_filter_that_matches_nothing_keeps_the_earlier_export",),
    ),
    Planted(
        "one_sizes_estimate_for_every_size",  # originals reserved as squares: past the limit
        "budget.py",
        "estimate = min(self.sizes.estimate(size), budget.largest)",
        'estimate = min(self.sizes.estimate("square"), budget.largest)',
        ("tests/test_sizes.py::test_the_budget_judges_each_size_by_its_own_estimate",),
    ),
    Planted(
        "first_sizes_history_read_for_every_size",  # the state's square sizes judge the originals
        "fetch.py",
        "sizes=PhotoSizes(lambda size: store.recent_sizes(size, SIZE_SAMPLE)),",
        "sizes=PhotoSizes(lambda size: store.recent_sizes(options.sizes[0], SIZE_SAMPLE)),",
        ("tests/test_sizes.py::test_the_budget_judges_each_size_by_its_own_estimate",),
    ),
    Planted(
        "taxon_column_fixed_at_30",  # "Oncorhynchus mykiss gairdneri (original)" reads as the species
        "output/photos.py",
        "width = min(most, max([least, *(len(_taxon_label(t, several)) for t in report.taxa)]))",
        "width = least",
        ("tests/test_output.py::test_long_taxon_names_widen_the_column_and_a_cut_one_ends_with_an_ellipsis",),
    ),
    Planted(
        "taxon_name_cut_silently",  # a long name cut with nothing saying so
        "output/photos.py",
        'name = name[: width - len(suffix) - 1].rstrip() + "…"',
        "name = name[: width - len(suffix)]",
        ("tests/test_output.py::test_long_taxon_names_widen_the_column_and_a_cut_one_ends_with_an_ellipsis",),
    ),
    Planted(
        "open_data_dry_run_priced_as_api_pages",  # "API requests for the listing: 0 ..., 0 s"
        "cli/photos.py",
        "show_dry_run(settings.out, report, options, None if source == OPEN_DATA else settings.api_rate)",
        "show_dry_run(settings.out, report, options, settings.api_rate)",
        ("tests/test_opendata_fetch.py::test_a_dry_run_says_the_listing_asked_no_api_request",),
    ),
    Planted(
        "place_id_asked_as_an_integer_range",  # "'Camargue' is not a valid integer range."
        "cli/options.py",
        'name = "integer"',
        'name = "integer range"',
        ("tests/test_fetch.py::test_bad_options_are_usage_errors",),
    ),
    Planted(
        "dates_shown_as_strftime_codes",  # --observed-from [%Y-%m-%d] in the help
        "cli/options.py",
        'return "YYYY-MM-DD"',
        "return super().get_metavar(param, ctx)",
        ("tests/test_fetch.py::test_the_help_names_numbers_n_and_dates_yyyy_mm_dd",),
    ),
    Planted(
        "ctrl_c_while_starting_is_a_traceback",  # the entry point imports the CLI unguarded
        "__main__.py",
        "    except KeyboardInterrupt:",
        "    except ImportError:",
        ("tests/test_cli_usage.py::test_ctrl_c_while_the_command_starts_is_one_line_and_exit_130",),
    ),
    Planted(
        "plan_reads_the_state_read_only",  # state.sqlite-wal and -shm left in the data dir
        "opendata/handoff.py",
        'db = sqlite3.connect(f"{(data_dir / STATE_FILE).resolve().as_uri()}?mode=rw", uri=True)',
        'db = sqlite3.connect(f"{(data_dir / STATE_FILE).resolve().as_uri()}?mode=ro", uri=True)',
        ("tests/test_opendata_handoff.py::test_the_api_plan_leaves_the_data_dir_as_a_fetch_does",),
    ),
    Planted(
        "plan_state_path_not_quoted",  # a data dir named 'x #1': the URI ends at '#'
        "opendata/handoff.py",
        'db = sqlite3.connect(f"{(data_dir / STATE_FILE).resolve().as_uri()}?mode=rw", uri=True)',
        'db = sqlite3.connect(f"file:{data_dir / STATE_FILE}?mode=rw", uri=True)',
        ("tests/test_opendata_handoff.py::test_the_api_plan_leaves_the_data_dir_as_a_fetch_does",),
    ),
    Planted(
        "export_size_case_sensitive",  # dataset export --size Medium refused, photos fetch's taken
        "cli/dataset.py",
        "type=click.Choice(list(PHOTO_SIZES), case_sensitive=False),",
        "type=click.Choice(list(PHOTO_SIZES)),",
        ("tests/test_cli.py::test_sizes_are_matched_ignoring_case_by_every_command",),
    ),
    Planted(
        "plan_written_under_any_name",  # photos plan plan.csv: Parquet bytes in a .csv
        "cli/photos.py",
        'if value.suffix.lower() != ".parquet":',
        "if False:",
        ("tests/test_opendata_handoff.py::test_the_plan_is_named_parquet",),
    ),
    Planted(
        "api_url_shown_as_text",  # --api-url TEXT in the help, where the README says URL
        "cli/__init__.py",
        '    envvar="INATDL_API_URL",\n    metavar="URL",',
        '    envvar="INATDL_API_URL",',
        ("tests/test_cli.py::test_the_urls_are_shown_as_url_in_the_help",),
    ),
    Planted(
        "bad_csv_row_on_the_wrong_line",  # a quote never closed: the line where the row starts
        "species_file.py",
        "starts = reader.line_num + 1",
        "pass",
        ("tests/test_taxa_resolve.py::test_bad_species_files_get_one_line",),
    ),
    Planted(
        "open_data_host_down_says_only_try_later",  # no word of the connection or --open-data-url
        "opendata/download.py",
        'AGAIN = "check your connection and --open-data-url, then run the same command again"',
        'AGAIN = "try again later"',
        ("tests/test_opendata_sync_faults.py::test_an_unreachable_host_says_to_check_the_connection_and_the_url",),
    ),
    Planted(
        "api_rate_asked_as_a_float_range",  # "'fast' is not a valid float range."
        "cli/options.py",
        'name = "number"',
        'name = "float range"',
        ("tests/test_cli.py::test_api_rate_must_be_a_positive_number",),
    ),
    Planted(
        "ctrl_c_loses_the_names_resolved",  # taxa resolve of thousands of names: all asked again
        "taxa.py",
        "                interrupted = True",
        "                raise",
        ("tests/test_taxa_resolve.py::test_ctrl_c_part_way_keeps_what_was_resolved",),
    ),
    Planted(
        "one_files_written",  # "(1 files written, 0 unchanged)"
        "output/dataset.py",
        'files = "file" if report.shards_written == 1 else "files"',
        'files = "files"',
        ("tests/test_cli.py::test_one_shard_written_is_said_in_the_singular",),
    ),
    # The new-user walk-through's rough edges (after issue 22):
    Planted(
        "dry_run_counts_photos_handled",  # a dry run ended with "0 of 591 photos handled"
        "output/progress.py",
        'log.info("%s to download (dry run: nothing downloaded)", photos(job.listed))',
        'log.info("0 of %d photos handled", job.listed)',
        (
            "tests/test_output.py::test_a_dry_run_says_what_it_would_download_not_what_it_handled",
            "tests/test_opendata_fetch.py::test_the_progress_says_the_open_data_is_listed_not_paged",
        ),
    ),
    Planted(
        "open_data_said_paged",  # "paging the observations of the open data": it pages nothing
        "output/progress.py",
        'log.info("listing the photos of %s from the open data", _taxa(taxa))',
        'log.info("paging the observations of the open data (%s)", _taxa(taxa))',
        ("tests/test_opendata_fetch.py::test_the_progress_says_the_open_data_is_listed_not_paged",),
    ),
    Planted(
        "dropped_download_counted_as_handled",  # "44 of 60 handled" beside other numbers after a stop
        "output/progress.py",
        "column = _COLUMNS.get(outcome.status)",
        'column = _COLUMNS.get(outcome.status, "new")',
        (
            "tests/test_output.py::test_the_last_progress_line_counts_as_the_summary_does",
            "tests/test_output.py::test_after_a_ctrl_c_the_last_line_agrees_with_the_summary",
        ),
    ),
    Planted(
        "obscured_exported_as_text",  # Parquet's coordinates_obscured 'false'/'true'
        "export/writers/parquet.py",
        'BOOLEAN_COLUMNS = ("coordinates_obscured",)',
        "BOOLEAN_COLUMNS = ()",
        ("tests/test_upgrade.py::test_parquet_and_webdataset_exports_type_the_new_columns_as_the_plan_does",),
    ),
    Planted(
        "accuracy_exported_as_float",  # Parquet's positional_accuracy a float, the plan's an integer
        "export/writers/parquet.py",
        '    "positional_accuracy",',
        '    "bytes",',
        ("tests/test_upgrade.py::test_parquet_and_webdataset_exports_type_the_new_columns_as_the_plan_does",),
    ),
    Planted(
        "webdataset_obscured_as_text",  # the .json's coordinates_obscured "false", the card's bool
        "export/writers/webdataset.py",
        '_JSON_BOOLEAN_COLUMNS = ("coordinates_obscured",)',
        "_JSON_BOOLEAN_COLUMNS = ()",
        ("tests/test_upgrade.py::test_parquet_and_webdataset_exports_type_the_new_columns_as_the_plan_does",),
    ),
    Planted(
        "api_url_not_checked",  # --api-url foo: every name an error in taxa.csv, exit 1
        "cli/options.py",
        'usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)',
        "usable = True",
        ("tests/test_cli.py::test_an_unusable_api_url_is_a_usage_error_naming_the_option",),
    ),
    Planted(
        "full_disk_lease_counted_whole",  # a lease a full disk could not close: 50 MB counted as sent
        "state.py",
        "                self._lease_slot.keep(lease_id, at, num_bytes)",
        "                pass",
        ("tests/test_faults.py::test_a_disk_that_stays_full_under_the_state_file_leaves_no_reservation_counted_as_sent",),
    ),
    Planted(
        "kept_lease_never_settled",  # the closing kept, never written to the ledger
        "budget.py",
        "store.settle_kept_lease()  # a lease a full disk left counted whole",
        "pass",
        ("tests/test_faults.py::test_a_disk_that_stays_full_under_the_state_file_leaves_no_reservation_counted_as_sent",),
    ),
    Planted(
        "open_data_names_not_found_on_inaturalist",  # the dump was asked, not iNaturalist
        "cli/taxa.py",
        'show_taxa(settings.out, rows, data_dir / TAXA_FILE, f"in the open data of {dump_date}")',
        "show_taxa(settings.out, rows, data_dir / TAXA_FILE)",
        ("tests/test_opendata_resolve.py::test_names_resolve_from_the_taxa_table_without_the_api",),
    ),
    Planted(
        "export_silent_about_a_running_fetch",  # its photos told as those of "a fetch that was stopped"
        "export/__init__.py",
        "report.fetch_running = lock_holder(data_dir)",
        "report.fetch_running = None",
        ("tests/test_export.py::test_an_export_while_a_fetch_runs_says_so_in_one_line",),
    ),
    Planted(
        "photos_help_says_download",  # "Download…" though photos plan downloads nothing
        "cli/groups.py",
        '    """The photos of the resolved taxa: download them (fetch: photos/ and photos.csv), or',
        '    """Download the photos of the resolved taxa (writes photos/ and photos.csv). Or',
        ("tests/test_cli.py::test_the_photos_groups_help_names_both_its_commands",),
    ),
    Planted(
        "retries_dropped_at_a_limit",  # records lost by a kill stay lost when the run stops at a limit
        "feed.py",
        "            if stop.dropping:  # at a limit they are still handed on",
        "            if stop.stopping:  # at a limit they are still handed on",
        ("tests/test_budget_sent.py::test_at_a_full_window_photos_complete_on_disk_are_still_recorded",),
    ),
    Planted(
        "jobs_dropped_after_a_limit",  # a photo complete on disk handed on after the stop: unrecorded
        "pool.py",
        "        self._record_if_there(job)\n\n    def _record_if_there",
        "        return\n\n    def _record_if_there",
        ("tests/test_budget_sent.py::test_at_a_full_window_photos_complete_on_disk_are_still_recorded",),
    ),
    Planted(
        "every_command_imported_at_start",  # photos fetch pays for export's and records' code
        "cli/__init__.py",
        "from inatdl.cli.groups import GROUPS",
        "from inatdl.cli import dataset, records  # noqa: F401\nfrom inatdl.cli.groups import GROUPS",
        ("tests/test_cli_usage.py::test_a_photos_fetch_from_the_api_imports_only_what_it_runs",),
    ),
    Planted(
        "ctrl_c_while_a_command_is_imported_is_aborted",  # click's "Aborted!" and exit 1
        "cli/groups.py",
        "    except KeyboardInterrupt:  # as the entry point's own import of the CLI",
        "    except ImportError:",
        ("tests/test_cli_usage.py::test_a_ctrl_c_while_a_command_is_imported_is_one_line_and_exit_130",),
    ),
    Planted(
        "bare_booleans_measured_as_quoted",  # a sample's JSON 2 bytes off: a shard past --shard-size
        "export/writers/webdataset.py",
        "return self.fixed + _utf8_length(text) + _utf8_length(label) + unquoted",
        "return self.fixed + _utf8_length(text) + _utf8_length(label)",
        ("tests/test_export_exact.py::test_a_samples_json_is_measured_as_written_with_its_bare_booleans",),
    ),
    Planted(
        "cut_export_forgets_what_it_placed",  # the state names the previous files only while writing
        "export/owned.py",
        'return self._names("SELECT name FROM previous UNION SELECT name FROM now ORDER BY name")',
        'return self._names("SELECT name FROM previous ORDER BY name")',
        (
            "tests/test_export_outdir.py::test_an_update_after_a_cut_short_export_removes_the_photos_that_export_placed",
        ),
    ),
    Planted(
        "files_in_an_older_state_ignored",  # an export by an older inatdl: its stale photos stay
        "export/outdir.py",
        "listed=[f for f in listed if isinstance(f, str) and safe_relative(f)],",
        "listed=[],",
        ("tests/test_export_outdir.py::test_an_export_whose_state_lists_its_files_itself_is_updated",),
    ),
    Planted(
        "list_of_files_alone_refused",  # a first export killed between its two state files
        "export/outdir.py",
        "if any(entry.name != FILES_NAME for entry in out_dir.iterdir()):",
        "if any(out_dir.iterdir()):",
        ("tests/test_export_outdir.py::test_a_folder_holding_only_the_list_of_files_is_exported_into",),
    ),
    Planted(
        "signals_raised_inside_a_stopping_step",  # "release unlocked lock": exit 1, no photos.csv
        "fetch.py",
        "            with _signals_noted(stop) as came:",
        "            with contextlib.nullcontext([]) as came:",
        ("tests/test_stop.py::test_a_signal_while_the_run_stops_never_cuts_a_stopping_step_short",),
    ),
    Planted(
        "stopped_workers_leave_part_files",  # a Ctrl-C leaves the held worker's temporary file
        "export/writers/_shards.py",
        "temporary_name(writer.context.out_dir / shard.name).unlink()",
        "pass",
        ("tests/test_export_formats.py::test_a_stop_while_workers_write_shards_leaves_only_whole_shards",),
    ),
    Planted(
        "workers_outlive_a_killed_export",  # no death signal, no watch: orphans after kill -9
        "export/writers/_shards.py",
        "death_signal_set = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0",
        "death_signal_set = True",
        ("tests/test_export_formats.py::test_an_export_killed_outright_leaves_no_worker_running",),
    ),
    Planted(
        "sigterm_kills_the_export_at_once",  # SIGTERM not turned into a clean stop
        "cli/dataset.py",
        "with sigterm_as_interrupt():  # the workers",
        "if True:  # the workers",
        ("tests/test_export_formats.py::test_a_stop_while_workers_write_shards_leaves_only_whole_shards",),
    ),
    Planted(
        "a_dead_worker_is_a_traceback",  # BrokenProcessPool reaches the user
        "export/writers/_shards.py",
        "if isinstance(exc, BrokenProcessPool):",
        "if False:",
        ("tests/test_export_formats.py::test_a_worker_that_dies_is_one_line",),
    ),
    Planted(
        "workers_shards_not_recorded",  # a shard a worker wrote is rewritten after a stop
        "export/writers/_shards.py",
        "        self.on_disk[shard.name] = shard.fingerprint\n"
        "        write_state(self.context.out_dir",
        "        write_state(self.context.out_dir",
        ("tests/test_export_formats.py::test_a_disk_that_fills_mid_shard_leaves_no_truncated_shard",),
    ),
    Planted(
        "finished_shards_forgotten_at_an_error",  # a full disk: the shards done meanwhile rewritten
        "export/writers/_shards.py",
        "                recorded.add(future.result())\n"
        "                writer.record_written(shards[future.result()])",
        "                recorded.add(future.result())\n"
        "                if failure is None:\n"
        "                    writer.record_written(shards[future.result()])",
        ("tests/test_export_formats.py::test_a_disk_that_fills_mid_shard_leaves_no_truncated_shard",),
    ),
    Planted(
        "a_stop_leaves_temporary_files",  # a Ctrl-C just as a temporary file appears leaves it
        "files.py",
        "if not isinstance(exc, FileExistsError):",
        "if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):",
        (
            "tests/test_export_formats.py::"
            "test_a_ctrl_c_raised_as_a_state_file_appears_leaves_no_temporary_file",
        ),
    ),
    Planted(
        "workers_forked_beside_other_threads",  # a lock another thread held, held for good
        "export/writers/_shards.py",
        'if not sys.platform.startswith("linux") or threading.active_count() > 1:',
        'if not sys.platform.startswith("linux"):',
        ("tests/test_export_formats.py::test_a_program_with_other_threads_writes_its_shards_itself",),
    ),
    Planted(
        "parquet_row_groups_unbounded_in_photos",  # 4,000 photos of 1 kB a group: more memory
        "export/writers/parquet.py",
        "if enough or end - start >= ROW_GROUP_MOST_PHOTOS:",
        "if enough:",
        (
            "tests/test_export_formats.py::"
            "test_parquet_row_groups_hold_a_least_of_photos_and_grow_to_a_bound_of_image_bytes",
        ),
    ),
    Planted(
        "the_command_writes_shards_alone",  # the CLI never forks: one core does all
        "export/writers/_shards.py",
        "threading.active_count() > 1:",
        "threading.active_count() > 0:",
        ("tests/test_export_formats.py::test_the_command_writes_its_shards_with_a_worker_a_core",),
    ),
    Planted(
        "shards_finished_during_a_stop_forgotten",  # Ctrl-C while CREDITS.md is written
        "export/writers/_shards.py",
        "                    writer.record_written(shards[index])\n",
        "                    pass\n",
        ("tests/test_export_formats.py::test_a_ctrl_c_while_credits_are_written_keeps_the_finished_shards",),
    ),
    Planted(
        "workers_forked_with_the_exports_handlers",  # a Ctrl-C as they start: their tracebacks
        "export/writers/_shards.py",
        "        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)\n",
        "",
        ("tests/test_export_formats.py::test_workers_start_with_the_stopping_signals_held",),
    ),
    Planted(
        "selection_held_in_memory",  # every photo's numbers in memory: 100 MB a million photos
        "export/spill.py",
        "        if self.count >= RUN:\n",
        "        if False:\n",
        ("tests/test_export_scratch.py::test_the_selection_holds_nothing_a_photo",),
    ),
    Planted(
        "merge_of_runs_not_stable",  # equal keys out of their order: --max-per-taxon keeps others
        "export/spill.py",
        'side="right" if i <= bound_run else "left"',
        'side="right"',
        ("tests/test_export_scratch.py::test_sorting_on_disk_gives_the_order_a_stable_sort_in_memory_gives",),
    ),
    Planted(
        "merge_gives_records_before_their_turn",  # a run's later records given out too soon
        "export/spill.py",
        "bound_run = int(unread[np.argmin(last[unread])])",
        "bound_run = int(unread[np.argmax(last[unread])])",
        (
            "tests/test_export_scratch.py::test_an_export_sorted_in_many_runs_on_disk_is_the_export_sorted_at_once",
        ),
    ),
    Planted(
        "full_scratch_disk_traceback",  # ENOSPC in $TMPDIR: "unexpected OSError"
        "export/spill.py",
        "        except OSError as exc:\n            raise scratch_error(exc) from None\n\n    def read",
        "        except ValueError as exc:\n            raise scratch_error(exc) from None\n\n    def read",
        ("tests/test_export_scratch.py::test_a_full_scratch_disk_is_told_in_one_line",),
    ),
    Planted(
        "known_hashes_all_held",  # an update to a smaller selection: every old id's hash in memory
        "export/spill.py",
        '                held = more["hash"]\n',
        '                held = np.concatenate((held, more["hash"]))\n',
        ("tests/test_export_scratch.py::test_photos_are_counted_against_sorted_hashes_a_chunk_at_a_time",),
    ),
    Planted(
        "empty_split_crashes_the_shards",  # --split with a share no photo lands in: a traceback
        "export/writers/_shards.py",
        "            if not bounds:  # a split without photos: no shard (the card names the others)\n"
        "                continue\n",
        "",
        ("tests/test_export_formats.py::test_a_split_without_photos_has_no_shard",),
    ),
    Planted(
        "damaged_photo_list_found_after_the_shards",  # half the shards rewritten, then the error
        "export/outdir.py",
        "    for _ in previous.photo_ids():",
        "    for _ in ():",
        ("tests/test_export_formats.py::test_a_damaged_list_of_photos_stops_an_update_before_it_changes_anything",),
    ),
    Planted(
        "leading_zero_id_ordered_as_text",  # photo 0140 after every number, not as 140
        "export/selection.py",
        "if photo_id.isascii() and photo_id.isdigit() and int(photo_id) < _TEXT_IDS",
        "if False",
        ("tests/test_export_scratch.py::test_ids_that_are_not_plain_numbers_keep_their_text_and_their_place",),
    ),
]


def run_tests(src: Path, tests: tuple[str, ...]) -> bool:
    """True when the tests pass against the package in ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True).returncode == 0


def check(bug: Planted) -> bool:
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        src = Path(tmp, "src")
        shutil.copytree(ROOT / "src", src)
        target = src / "inatdl" / bug.path
        text = target.read_text(encoding="utf-8")
        if text.count(bug.old) != 1:
            print(f"{bug.name}: the line to change is not in {bug.path} once; update this script")
            return False
        if not run_tests(src, bug.tests):
            print(f"{bug.name}: its tests fail without the bug")
            return False
        target.write_text(text.replace(bug.old, bug.new), encoding="utf-8")
        caught = not run_tests(src, bug.tests)
    print(f"{bug.name}: {'caught' if caught else 'NOT CAUGHT'} by {', '.join(bug.tests)}")
    return caught


def main(names: list[str]) -> int:
    chosen = [bug for bug in BUGS if not names or bug.name in names]
    results = [check(bug) for bug in chosen]
    return 0 if chosen and all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
