# Sourced by scripts/test: the system packages the full suite needs, from Debian's
# mirrors, installed only when missing (no apt call at all when they are there):
#   postgresql  server binaries in /usr/lib/postgresql/<ver>/bin (a private cluster per run)
#   chromium    /usr/bin/chromium, driven by Playwright in the browser tests
# The system-wide cluster that the postgresql package may create is never used.

itb_have_postgres() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] && [ -x "$bin/postgres" ] && return 0
  done
  return 1
}

itb_have_chromium() { [ -x /usr/bin/chromium ]; }

itb_ensure_system_packages() {
  local missing=()
  itb_have_postgres || missing+=(postgresql)
  itb_have_chromium || missing+=(chromium)
  [ "${#missing[@]}" -eq 0 ] && return 0

  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "scripts/test: FAILED: needs ${missing[*]} and is not root (apt-get install ${missing[*]})" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test: FAILED: needs ${missing[*]} and there is no apt-get to install it" >&2
    return 1
  fi

  echo "== apt-get install ${missing[*]}"
  local start=$SECONDS policy=/usr/sbin/policy-rc.d made_policy=0 log
  log="$(mktemp "${TMPDIR:-/tmp}/itb-apt.XXXXXX.log")"
  # Packages must not start services (the postgresql package would start its
  # system cluster): a temporary policy-rc.d says no, unless one is already there.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    made_policy=1
  fi
  # Another run installing at the same time holds the dpkg lock: wait for it.
  local rc=0 apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  {
    "${apt[@]}" update -qq &&
      "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"
  } >"$log" 2>&1 || rc=$?
  [ "$made_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    local reason
    reason="$(grep -E '^E:' "$log" | tail -n 1)"
    [ -n "$reason" ] || reason="$(tail -n 1 "$log")"
    echo "scripts/test: FAILED: apt-get install ${missing[*]} exited $rc: $reason (log: $log)" >&2
    return 1
  fi
  rm -f "$log"
  itb_have_postgres || { echo "scripts/test: FAILED: postgresql installed but no server binaries in /usr/lib/postgresql/*/bin" >&2; return 1; }
  itb_have_chromium || { echo "scripts/test: FAILED: chromium installed but /usr/bin/chromium is missing" >&2; return 1; }
  echo "   installed ${missing[*]} in $((SECONDS - start)) s"
}
