"""Generated shell scripts. Every interpolated value goes through `q` (shlex.quote) here,
and nothing else in Mirador writes shell. The scripts follow design.md: bash, `set -euo
pipefail`, `${OLLAMA_BIN:-ollama}`, OLLAMA_HOST honoured, idempotent, a summary at the end
and a non-zero exit on any failure. They need bash 4+ and run nothing but `ollama` (plus
`curl` to probe embedding models, and `sha256sum` when present to check a Modelfile did not
change since the diagnosis).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mirador import __version__

CHAT_PROBE = "Reply with one short sentence: what can you help me with?"
EMBED_PROBE = "Mirador checks that this model returns an embedding."


def q(value: object) -> str:
    """The one shell-quoting function: any value becomes one literal word."""
    return shlex.quote(str(value))


def script_relative(path: Path, script_dir: Path) -> str:
    """A shell expression for `path`, relative to the script's own folder when possible."""
    try:
        rel = os.path.relpath(path.resolve(), script_dir.resolve())
    except ValueError:
        return q(path.resolve())
    if rel.split(os.sep)[:3] == [os.pardir] * 3:
        return q(path.resolve())  # far apart: an absolute path reads better
    return f'"$SCRIPT_DIR"/{q(rel)}'


def _comment(text: str) -> str:
    return "\n".join("# " + " ".join(line.split()) for line in text.splitlines())


# NOTE: the prelude is plain bash with no generated values in it; values only appear as
# quoted arguments of the step calls that follow it.
PRELUDE = r'''set -euo pipefail
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "this script needs bash 4 or newer" >&2; exit 2
fi

OLLAMA="${OLLAMA_BIN:-ollama}"
case "${BASH_SOURCE[0]}" in */*) SCRIPT_DIR="${BASH_SOURCE[0]%/*}" ;; *) SCRIPT_DIR=. ;; esac
printf -v STAMP '%(%Y%m%d-%H%M%S)T' -1
DRY_RUN=0
KEEP_GOING=0
ALL=0
DONE=()
SKIPPED=()
FAILED=()
NOTES=()
declare -A FAILED_SET=()

say() { printf '%s\n' "$*" >&2; }

# Print a command, then run it unless --dry-run.
run() {
  printf '+' >&2; printf ' %q' "$@" >&2; printf '\n' >&2
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@"
}

now_ms() {
  local t="${EPOCHREALTIME:-}"
  if [ -n "$t" ]; then t="${t/[.,]/}"; printf '%s' "$((10#$t / 1000))"
  else printf '%s' "$((SECONDS * 1000))"; fi
}

# The server URL for curl, from OLLAMA_HOST as Ollama reads it (common forms).
api_base() {
  local h="${OLLAMA_HOST:-}" scheme=http port=11434 hostport path=""
  h="${h#"${h%%[![:space:]]*}"}"; h="${h%"${h##*[![:space:]]}"}"
  h="${h#[\"\']}"; h="${h%[\"\']}"
  case "$h" in
    http://*) h="${h#http://}"; port=80 ;;
    https://*) h="${h#https://}"; scheme=https; port=443 ;;
  esac
  hostport="${h%%/*}"
  if [ "$hostport" != "$h" ]; then path="/${h#*/}"; fi
  case "$hostport" in
    "") hostport="127.0.0.1:$port" ;;
    \[*\]:*) ;;
    \[*\]) hostport="$hostport:$port" ;;
    *:*:*) hostport="[$hostport]:$port" ;;
    :*) hostport="127.0.0.1$hostport" ;;
    *:*) ;;
    *) hostport="$hostport:$port" ;;
  esac
  case "$hostport" in 0.0.0.0:*) hostport="127.0.0.1:${hostport#*:}" ;; "[::]:"*) hostport="[::1]:${hostport#*]:}" ;; esac
  printf '%s://%s%s' "$scheme" "$hostport" "${path%/}"
}

# The 12-character ID `ollama list` shows for a model, or nothing when it is absent.
current_id() {
  local want="${1,,}" name id rest
  case "$want" in *:*) ;; *) want="$want:latest" ;; esac
  while read -r name id rest; do
    if [ "${name,,}" = "$want" ]; then printf '%s' "$id"; return 0; fi
  done < <("$OLLAMA" list 2>/dev/null || true)
  return 0
}

# Does the model answer? Chat models get a short completion, embedding models /api/embed.
probe_model() {
  local name="$1" kind="$2" body="$3" out
  if [ "$kind" = embedding ] && command -v curl >/dev/null 2>&1; then
    out="$(curl -fsS --max-time 300 -H 'Content-Type: application/json' -d "$body" "$(api_base)/api/embed" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
    case "$out" in *'"embeddings":[['*) return 0 ;; esac
    PROBE_ERROR="no embedding in the reply: ${out:0:200}"; return 1
  fi
  if [ "$kind" = embedding ]; then
    out="$("$OLLAMA" run "$name" "$EMBED_PROMPT" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
  else
    out="$("$OLLAMA" run "$name" "$CHAT_PROMPT" 2>&1)" || { PROBE_ERROR="$out"; return 1; }
  fi
  if [ -z "${out//[[:space:]]/}" ]; then PROBE_ERROR="empty answer"; return 1; fi
  return 0
}

fail() {
  FAILED+=("$1: $2"); FAILED_SET["$1"]=1
  say "FAILED  $1: $2"
  if [ "$KEEP_GOING" != 1 ]; then summary; exit 1; fi
}

summary() {
  local item
  say ""
  say "Summary: ${#DONE[@]} done, ${#SKIPPED[@]} skipped, ${#FAILED[@]} failed$([ "$DRY_RUN" = 1 ] && printf ' (dry run: nothing was changed)')"
  for item in "${DONE[@]}"; do say "  done     $item"; done
  for item in "${SKIPPED[@]}"; do say "  skipped  $item"; done
  for item in "${FAILED[@]}"; do say "  FAILED   $item"; done
  for item in "${NOTES[@]}"; do say "  note     $item"; done
}
'''

# Build and migrate scripts remember what they finished, so a second run skips it.
STATE_HELPERS = r'''
# Was this exact file (sha256) already made into the model NAME that is on the server now?
# The state file has one line per finished model: sha256, name, ID. Pass the ID if known.
state_has() {
  local sha="$1" name="$2" id="${3-}" s n i
  [ $# -ge 3 ] || id="$(current_id "$name")"
  [ -n "$id" ] && [ -f "$STATE_FILE" ] || return 1
  while IFS=$'\t' read -r s n i; do
    if [ "$s" = "$sha" ] && [ "${n,,}" = "${name,,}" ] && [ "$i" = "$id" ]; then return 0; fi
  done < "$STATE_FILE"
  return 1
}

state_record() {  # SHA NAME: NAME, as it is now on the server, was made from SHA
  local id
  [ "$DRY_RUN" != 1 ] || return 0
  id="$(current_id "$2")"
  if [ -n "$id" ]; then printf '%s\t%s\t%s\n' "$1" "$2" "$id" >> "$STATE_FILE"; fi
}
'''

BACKUP_NAME = r'''
backup_name_for() {  # NAME → NAME-backup-STAMP:TAG
  local name="$1" model tag=latest
  model="${name%:*}"; case "$name" in *:*) tag="${name##*:}" ;; esac
  printf '%s-backup-%s:%s' "$model" "$STAMP" "$tag"
}
'''

OPTIONS = r'''while [ $# -gt 0 ]; do
  case "$1" in
    --all) ALL=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --keep-going) KEEP_GOING=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
'''


def _header(title: str, tool: str, host: str, description: str, usage: str) -> str:
    return (f"#!/usr/bin/env bash\n# {title}\n"
            f"{_comment(f'Generated by Mirador {__version__} ({tool}) for {host}.')}\n"
            f"{_comment(description)}\n"
            "# Honours OLLAMA_HOST; runs ${OLLAMA_BIN:-ollama}. Review it, then run it.\n\n"
            f"usage() {{\n  cat <<'USAGE'\n{usage.rstrip()}\nUSAGE\n}}\n\n"
            f"CHAT_PROMPT={q(CHAT_PROBE)}\nEMBED_PROMPT={q(EMBED_PROBE)}\n")


def embed_body(name: str) -> str:
    return json.dumps({"model": name, "input": EMBED_PROBE})


@dataclass(frozen=True)
class BuildStep:
    """One model the build script may create, in build order."""

    name: str
    modelfile: Path
    sha256: str
    status: str  # needs_build or drifted
    scope: str  # "critical" (always built) or "all" (only with --all)
    kind: str  # "chat" or "embedding"
    fleet_bases: tuple[str, ...] = ()  # fleet models it is built FROM


@dataclass(frozen=True)
class PullStep:
    name: str
    scope: str


def build_script(*, host: str, script_dir: Path, pulls: Sequence[PullStep],
                 steps: Sequence[BuildStep], state_file: str = ".mirador_build_state") -> str:
    usage = """Usage: build_critical_models.sh [--all] [--dry-run] [--keep-going] [-h|--help]

Pulls missing base models, then builds (ollama create) the critical models that are not
built or have drifted from their Modelfiles, in dependency order. A drifted model is first
copied to NAME-backup-<timestamp> (ollama cp: no extra disk) so it can be rolled back.
Each built model must answer a probe. Running it twice does nothing the second time.

  --all         also build the non-critical models that need it
  --dry-run     print what it would do, change nothing
  --keep-going  continue past a failure (the exit code is still non-zero)"""
    out = [_header("Build the models the diagnosis found missing or drifted.",
                   "mirador_model_diagnostic.py", host,
                   f"{len(steps)} model(s) in build order, {len(pulls)} base(s) to pull.",
                   usage), PRELUDE, OPTIONS, STATE_HELPERS, BACKUP_NAME]
    out.append(f'STATE_FILE="${{MIRADOR_STATE_FILE:-$SCRIPT_DIR/{state_file}}}"\n')
    out.append(r'''
in_scope() { [ "$1" = critical ] || [ "$ALL" = 1 ]; }

pull_base() {
  local name="$1" scope="$2"
  in_scope "$scope" || return 0
  if [ -n "$(current_id "$name")" ]; then SKIPPED+=("$name (base already present)"); return 0; fi
  if run "$OLLAMA" pull "$name"; then DONE+=("pulled $name"); else fail "$name" "pull failed"; fi
}

build_model() {
  local name="$1" file="$2" sha="$3" status="$4" scope="$5" kind="$6" body="$7"
  shift 7
  in_scope "$scope" || return 0
  local base
  for base in "$@"; do
    if [ -n "${FAILED_SET[$base]:-}" ]; then fail "$name" "its base $base failed"; return 0; fi
  done
  if [ ! -f "$file" ]; then fail "$name" "Modelfile not found: $file"; return 0; fi
  if command -v sha256sum >/dev/null 2>&1; then
    local now; now="$(sha256sum < "$file")"; now="${now%% *}"
    if [ "$now" != "$sha" ]; then
      fail "$name" "$file changed since the diagnosis; run mirador_model_diagnostic.py again"
      return 0
    fi
  fi
  local id; id="$(current_id "$name")"
  if state_has "$sha" "$name" "$id"; then
    SKIPPED+=("$name (already built from this Modelfile)"); return 0
  fi
  if [ "$status" = drifted ] && [ -n "$id" ]; then
    local backup
    backup="$(backup_name_for "$name")"
    if ! run "$OLLAMA" cp "$name" "$backup"; then fail "$name" "backup copy failed"; return 0; fi
    NOTES+=("roll back $name with: $OLLAMA cp $backup $name")
  fi
  if ! run "$OLLAMA" create "$name" -f "$file"; then fail "$name" "ollama create failed"; return 0; fi
  if [ "$DRY_RUN" = 1 ]; then DONE+=("$name (dry run)"); return 0; fi
  PROBE_ERROR=""
  if ! probe_model "$name" "$kind" "$body"; then
    fail "$name" "built, but it does not answer: ${PROBE_ERROR:0:300}"; return 0
  fi
  state_record "$sha" "$name"
  DONE+=("$name ($status, answers)")
}

''')
    out.append("# --- the plan ------------------------------------------------------------\n")
    out += [f"pull_base {q(p.name)} {q(p.scope)}\n" for p in pulls]
    for s in steps:
        bases = "".join(f" {q(b)}" for b in s.fleet_bases)
        out.append(f"build_model {q(s.name)} {script_relative(s.modelfile, script_dir)} "
                   f"{q(s.sha256)} {q(s.status)} {q(s.scope)} {q(s.kind)} "
                   f"{q(embed_body(s.name))}{bases}\n")
    out.append('\nsummary\n[ "${#FAILED[@]}" -eq 0 ]\n')
    return "".join(out)


@dataclass(frozen=True)
class ValidateStep:
    name: str
    kind: str


def validate_script(*, host: str, steps: Sequence[ValidateStep]) -> str:
    usage = """Usage: validate_critical_models.sh [-h|--help]

Checks each critical model is present and answers a query suited to it (a short
completion for chat models, an /api/embed call for embedding models), printing PASS or
FAIL per model with the time taken. Exits non-zero when any model fails."""
    out = [_header("Validate that every critical model is present and answers.",
                   "mirador_model_diagnostic.py", host,
                   f"{len(steps)} critical model(s).", usage), PRELUDE, OPTIONS]
    out.append(r'''
validate() {
  local name="$1" kind="$2" body="$3" t0 ms
  t0="$(now_ms)"
  if [ -z "$(current_id "$name")" ]; then
    printf 'FAIL  %-45s %6s ms  not on the server\n' "$name" "$(( $(now_ms) - t0 ))"
    FAILED+=("$name: not on the server"); return 0
  fi
  PROBE_ERROR=""
  if probe_model "$name" "$kind" "$body"; then
    ms="$(( $(now_ms) - t0 ))"
    printf 'PASS  %-45s %6s ms  %s\n' "$name" "$ms" "$kind"
    DONE+=("$name ($kind, $ms ms)")
  else
    ms="$(( $(now_ms) - t0 ))"
    printf 'FAIL  %-45s %6s ms  %s\n' "$name" "$ms" "${PROBE_ERROR:0:200}"
    FAILED+=("$name: ${PROBE_ERROR:0:200}")
  fi
}

''')
    out += [f"validate {q(s.name)} {q(s.kind)} {q(embed_body(s.name))}\n" for s in steps]
    out.append('\nsummary\n[ "${#FAILED[@]}" -eq 0 ]\n')
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Migration scripts (config_generator.py)

BACKUP_HELPERS = BACKUP_NAME + r'''
BACKUPS="${MIRADOR_BACKUP_DIR:-$SCRIPT_DIR/backups}"

# Look NAME up in a manifest: sets M_BACKUP and M_ID ("-" when it did not exist).
manifest_entry() {
  local manifest="$1" want="${2,,}" n b i
  M_BACKUP=""; M_ID=""
  [ -f "$manifest" ] || return 1
  while IFS=$'\t' read -r n b i; do
    case "$n" in "#"*|"") continue ;; esac
    if [ "${n,,}" = "$want" ]; then M_BACKUP="$b"; M_ID="$i"; return 0; fi
  done < "$manifest"
  return 1
}

# Copy NAME to a backup name, save its Modelfile text, append it to the manifest.
make_backup() {
  local name="$1" file="$2" manifest="$3" dir id backup
  dir="${manifest%/*}"
  id="$(current_id "$name")"
  if [ -z "$id" ]; then
    [ "$DRY_RUN" = 1 ] || printf '%s\t-\t-\n' "$name" >> "$manifest"
    SKIPPED+=("$name (not on the server: recorded as absent)"); return 0
  fi
  backup="$(backup_name_for "$name")"
  run "$OLLAMA" cp "$name" "$backup" || return 1
  if [ "$DRY_RUN" != 1 ]; then
    "$OLLAMA" show "$name" --modelfile > "$dir/$file" || return 1
    if [ "$(current_id "$backup")" != "$id" ]; then
      say "backup $backup does not have the digest of $name"; return 1
    fi
    printf '%s\t%s\t%s\n' "$name" "$backup" "$id" >> "$manifest"
  fi
  DONE+=("$name → $backup ($id)")
}
'''


@dataclass(frozen=True)
class BackupStep:
    name: str
    file_name: str  # where its `ollama show --modelfile` text goes, inside the backup dir


def backup_script(*, host: str, steps: Sequence[BackupStep]) -> str:
    usage = """Usage: backup_models.sh [--dry-run] [-h|--help]

Backs up every model the migration will touch: ollama cp NAME NAME-backup-<timestamp>
(blobs are shared: no extra disk), saves `ollama show NAME --modelfile` under
backups/<timestamp>/, and writes backups/<timestamp>/manifest.tsv (name, backup, digest ID)
and backups/latest. Models not on the server are recorded as absent, so a rollback
removes what the migration created for them."""
    out = [_header("Back up the models the migration will touch.", "config_generator.py",
                   host, f"{len(steps)} model(s).", usage), PRELUDE, OPTIONS, BACKUP_HELPERS]
    out.append(r'''
DIR="$BACKUPS/$STAMP"
MANIFEST="$DIR/manifest.tsv"
if [ "$DRY_RUN" != 1 ]; then
  mkdir -p "$DIR"
  printf '# name\tbackup\tid (as `ollama list` shows it)\n' > "$MANIFEST"
fi
backup() { make_backup "$1" "$2" "$MANIFEST" || fail "$1" "backup failed"; }

''')
    out += [f"backup {q(s.name)} {q(s.file_name)}\n" for s in steps]
    out.append(r'''
if [ "$DRY_RUN" != 1 ] && [ "${#FAILED[@]}" -eq 0 ]; then
  printf '%s\n' "$STAMP" > "$BACKUPS/latest"
  NOTES+=("manifest: $MANIFEST (roll back with rollback_models.sh)")
fi
summary
[ "${#FAILED[@]}" -eq 0 ]
''')
    return "".join(out)


@dataclass(frozen=True)
class MigrateStep:
    name: str
    modelfile: Path
    sha256: str
    scope: str  # "critical" or "all"
    kind: str
    file_name: str  # backup file name for its Modelfile text


def migrate_script(*, host: str, script_dir: Path, target_base: str, base_file: Path,
                   base_sha: str, base_from: str, steps: Sequence[MigrateStep]) -> str:
    usage = """Usage: migrate_models.sh [--all] [--from NAME] [--dry-run] [-h|--help]

Migrates the fleet to the target base, one model at a time, in the plan's order (models
confirmed working first). For each model: make sure a backup exists (made now if not),
build the target base if missing, ollama create from the optimized Modelfile, check it
answers. On any failure that model is restored from its backup and the script stops.
Running it again skips what is already migrated.

  --all        migrate every kept model, not only the critical ones
  --from NAME  resume at NAME (skip the models before it)
  --dry-run    print what it would do, change nothing"""
    options = OPTIONS.replace('    --keep-going) KEEP_GOING=1 ;;\n',
                              '    --from) shift; FROM="${1:?--from needs a model name}" ;;\n')
    out = [_header("Migrate the fleet to one base model, safely.", "config_generator.py",
                   host, f"Target base {target_base}; {len(steps)} model(s).", usage),
           PRELUDE, "FROM=\n", options, STATE_HELPERS, BACKUP_HELPERS]
    out.append(r'''
STATE_FILE="${MIRADOR_STATE_FILE:-$SCRIPT_DIR/.mirador_migrate_state}"
LATEST=""
if [ -f "$BACKUPS/latest" ]; then read -r LATEST < "$BACKUPS/latest" || true; fi
MANIFEST="$BACKUPS/${LATEST:-$STAMP}/manifest.tsv"
STARTED=0
[ -n "$FROM" ] || STARTED=1

# Put NAME back as it was before the migration touched it, then stop.
restore_and_stop() {
  local name="$1" why="$2"
  say "FAILED  $name: $why"
  if manifest_entry "$MANIFEST" "$name" && [ "$M_BACKUP" != "-" ]; then
    if run "$OLLAMA" cp "$M_BACKUP" "$name" && [ "$(current_id "$name")" = "$M_ID" ]; then
      say "restored $name from $M_BACKUP (digest $M_ID)"
    else
      say "could NOT restore $name from $M_BACKUP: restore it by hand: $OLLAMA cp $M_BACKUP $name"
    fi
  elif [ -n "$(current_id "$name")" ]; then
    run "$OLLAMA" rm "$name" >/dev/null && say "removed $name (it did not exist before the migration)"
  fi
  FAILED+=("$name: $why")
  say "The migration stopped at $name. Fix the cause, then resume with: migrate_models.sh --from $name"
  summary
  exit 1
}

ensure_base() {
  local name="$1" file="$2" sha="$3" from="$4"
  if state_has "$sha" "$name"; then SKIPPED+=("$name (base already built)"); return 0; fi
  if [ -z "$(current_id "$from")" ]; then
    run "$OLLAMA" pull "$from" || { FAILED+=("$from: pull failed"); summary; exit 1; }
  fi
  if ! run "$OLLAMA" create "$name" -f "$file"; then FAILED+=("$name: the target base did not build"); summary; exit 1; fi
  if [ "$DRY_RUN" != 1 ]; then
    PROBE_ERROR=""
    if ! probe_model "$name" chat ""; then FAILED+=("$name: the target base does not answer: ${PROBE_ERROR:0:200}"); summary; exit 1; fi
  fi
  state_record "$sha" "$name"; DONE+=("$name (target base)")
}

migrate() {
  local name="$1" file="$2" sha="$3" scope="$4" kind="$5" body="$6" backup_file="$7"
  if [ "$STARTED" != 1 ]; then
    if [ "${name,,}" = "${FROM,,}" ] || [ "${name,,}" = "${FROM,,}:latest" ]; then STARTED=1; else SKIPPED+=("$name (before --from)"); return 0; fi
  fi
  [ "$scope" = critical ] || [ "$ALL" = 1 ] || return 0
  if state_has "$sha" "$name"; then SKIPPED+=("$name (already migrated)"); return 0; fi
  if [ ! -f "$file" ]; then restore_and_stop "$name" "optimized Modelfile not found: $file"; fi
  if ! manifest_entry "$MANIFEST" "$name" || { [ "$M_BACKUP" != "-" ] && [ -z "$(current_id "$M_BACKUP")" ]; }; then
    if [ "$DRY_RUN" != 1 ]; then
      mkdir -p "${MANIFEST%/*}"
      if [ -z "$LATEST" ]; then printf '%s\n' "$STAMP" > "$BACKUPS/latest"; LATEST="$STAMP"; fi
    fi
    make_backup "$name" "$backup_file" "$MANIFEST" || { FAILED+=("$name: no backup could be made; nothing was changed"); summary; exit 1; }
  fi
  run "$OLLAMA" create "$name" -f "$file" || restore_and_stop "$name" "ollama create failed"
  if [ "$DRY_RUN" = 1 ]; then DONE+=("$name (dry run)"); return 0; fi
  PROBE_ERROR=""
  probe_model "$name" "$kind" "$body" || restore_and_stop "$name" "built, but it does not answer: ${PROBE_ERROR:0:200}"
  state_record "$sha" "$name"
  DONE+=("$name (migrated, answers)")
}

''')
    out.append(f"ensure_base {q(target_base)} {script_relative(base_file, script_dir)} "
               f"{q(base_sha)} {q(base_from)}\n")
    for s in steps:
        out.append(f"migrate {q(s.name)} {script_relative(s.modelfile, script_dir)} "
                   f"{q(s.sha256)} {q(s.scope)} {q(s.kind)} {q(embed_body(s.name))} "
                   f"{q(s.file_name)}\n")
    out.append('\nif [ "$STARTED" != 1 ]; then FAILED+=("--from $FROM: no such model in this '
               'plan"); fi\nsummary\n[ "${#FAILED[@]}" -eq 0 ]\n')
    return "".join(out)


def rollback_script(*, host: str) -> str:
    usage = """Usage: rollback_models.sh [--manifest FILE] [--dry-run] [NAME...]

Restores every model of a backup manifest (default: backups/<latest>/manifest.tsv), or
only the NAMEs given: ollama cp BACKUP NAME, then checks the restored digest ID equals the
manifest's. A model the manifest records as absent is removed. Exits non-zero when any
model could not be restored exactly."""
    options = OPTIONS.replace(
        "    --keep-going) KEEP_GOING=1 ;;\n",
        '    --manifest) shift; MANIFEST="${1:?--manifest needs a file}" ;;\n').replace(
        '    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;\n',
        '    -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;\n'
        '    *) ONLY+=("$1") ;;\n')
    out = [_header("Roll models back to a backup manifest.", "config_generator.py", host,
                   "Restores and verifies digests.", usage), PRELUDE,
           "MANIFEST=\nONLY=()\nKEEP_GOING=1\n", options, BACKUP_HELPERS]
    out.append(r'''
if [ -z "$MANIFEST" ]; then
  LATEST=""
  if [ -f "$BACKUPS/latest" ]; then read -r LATEST < "$BACKUPS/latest" || true; fi
  [ -n "$LATEST" ] || { echo "no backups/latest: pass --manifest FILE" >&2; exit 2; }
  MANIFEST="$BACKUPS/$LATEST/manifest.tsv"
fi
[ -f "$MANIFEST" ] || { echo "manifest not found: $MANIFEST" >&2; exit 2; }

wanted() {
  local n="${1,,}" o
  [ "${#ONLY[@]}" -eq 0 ] && return 0
  for o in "${ONLY[@]}"; do
    o="${o,,}"; case "$o" in *:*) ;; *) o="$o:latest" ;; esac
    case "$n" in *:*) ;; *) n="$n:latest" ;; esac
    [ "$n" = "$o" ] && return 0
  done
  return 1
}

while IFS=$'\t' read -r name backup id; do
  case "$name" in "#"*|"") continue ;; esac
  wanted "$name" || continue
  if [ "$backup" = "-" ]; then
    if [ -n "$(current_id "$name")" ]; then
      if run "$OLLAMA" rm "$name" >/dev/null; then DONE+=("$name (removed: it did not exist before)"); else fail "$name" "could not remove it"; fi
    else
      SKIPPED+=("$name (absent before and now)")
    fi
    continue
  fi
  if [ -z "$(current_id "$backup")" ]; then fail "$name" "backup $backup is not on the server"; continue; fi
  if ! run "$OLLAMA" cp "$backup" "$name"; then fail "$name" "ollama cp failed"; continue; fi
  if [ "$DRY_RUN" = 1 ]; then DONE+=("$name (dry run)"); continue; fi
  now="$(current_id "$name")"
  if [ "$now" = "$id" ]; then DONE+=("$name restored from $backup ($id)"); else fail "$name" "restored digest $now differs from the manifest's $id"; fi
done < "$MANIFEST"
summary
[ "${#FAILED[@]}" -eq 0 ]
''')
    return "".join(out)
