#!/bin/bash
# Mutation testing (`make mutants`): plants each one-line bug of
# tests/mutants/list alone in a scratch copy of the tree and checks that the
# suites named for it fail. Usage: scripts/mutants.sh [ID...] (default: all).
#
# The scratch copy and its build persist in $QBLK_MUTANTS_DIR (default
# /tmp/qblk-mutants-$USER) and are updated incrementally, so a run rebuilds
# only what each mutant touches. A snippet that does not match exactly once,
# or a mutant that does not compile, is an error in the list, never a kill;
# a suite that times out (a hang) is a kill. Before any mutant, every suite
# used must pass on the unmutated copy. Prints one line per mutant and ends
# with "N killed, N survived"; exits non-zero if any survived or erred.
# QBLK_MUTANTS_LIST names another list; QBLK_MUTANTS_TIMEOUT the seconds a
# shell suite may run (default 180), a unit test a third of it (a hang in a
# unit test that normally takes a second should not cost minutes).
cd "$(dirname "$0")/.." || exit 1
top=$PWD
list=${QBLK_MUTANTS_LIST:-$top/tests/mutants/list}
scratch=${QBLK_MUTANTS_DIR:-/tmp/qblk-mutants-$(id -un)}
src=$scratch/src
build=$scratch/build
log=$scratch/log
SUITE_TIMEOUT=${QBLK_MUTANTS_TIMEOUT:-180}

mkdir -p "$src" "$log" || exit 1

# ----- The list: blocks of "key: value" lines separated by blank lines -----
ids=() files=() froms=() tos=() suites=() whats=()
parse_list() {
    local line key val id= file= from= to= suite= what= n=0
    flush_entry() {
        [ -z "$id$file$from$to$suite$what" ] && return 0
        if [ -z "$id" ] || [ -z "$file" ] || [ -z "$from" ] || [ -z "$suite" ] || [ -z "$what" ]; then
            echo "mutants: $list: entry ending at line $n lacks id, file, from, suites or what" >&2
            exit 2
        fi
        for known in "${ids[@]}"; do
            if [ "$known" = "$id" ]; then
                echo "mutants: $list: duplicate id '$id'" >&2
                exit 2
            fi
        done
        ids+=("$id"); files+=("$file"); froms+=("$from"); tos+=("$to")
        suites+=("$suite"); whats+=("$what")
        id= file= from= to= suite= what=
    }
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        case $line in
        '#'*) continue ;;
        '') flush_entry; continue ;;
        esac
        key=${line%%:*}
        val=${line#*:}
        val=${val# }
        case $key in
        id) id=$val ;;
        file) file=$val ;;
        from) from=$val ;;
        to) to=$val ;;
        suites) suite=$val ;;
        what) what=$val ;;
        *) echo "mutants: $list:$n: unknown key '$key'" >&2; exit 2 ;;
        esac
    done <"$list"
    flush_entry
}
parse_list

selected=()
if [ $# -gt 0 ]; then
    for want in "$@"; do
        found=
        for i in "${!ids[@]}"; do
            [ "${ids[$i]}" = "$want" ] && selected+=("$i") && found=1
        done
        [ -n "$found" ] || { echo "mutants: no mutant '$want' in $list" >&2; exit 2; }
    done
else
    selected=("${!ids[@]}")
fi

# ----- Scratch tree: copy only what changed, so ninja rebuilds little -----
sync_tree() {
    local f files
    files=$(git -C "$top" ls-files -co --exclude-standard | sort)
    while IFS= read -r f; do
        [ -f "$top/$f" ] || continue
        if ! cmp -s "$top/$f" "$src/$f"; then
            mkdir -p "$src/$(dirname "$f")"
            cp "$top/$f" "$src/$f"
        fi
    done <<<"$files"
    # A file gone from the tree must not linger (the iotests glob NNN).
    while IFS= read -r f; do
        rm -f "$src/$f"
    done < <(comm -13 <(echo "$files") <(cd "$src" && find . -type f | sed 's|^\./||' | sort))
}

# Replaces the one occurrence of a snippet ("\n" is a newline; blanks around
# the snippet are not part of it). Exit 3 unless it occurs exactly once.
apply_mutant() {
    python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, old, new = sys.argv[1:4]
def unescape(s):
    return s.strip().replace("\\n", "\n")
old, new = unescape(old), unescape(new)
text = open(path).read()
count = text.count(old)
if count != 1:
    print(f"snippet occurs {count} times", file=sys.stderr)
    sys.exit(3)
open(path, "w").write(text.replace(old, new, 1))
EOF
}

# Ninja targets a suite needs (tools for the shell suites).
suite_targets() {
    case $1 in
    unit:*) local t=${1#unit:}; echo "tests/unit/${t%%:*}" ;;
    qmp:*|daemon-smoke) echo "qblk-storage-daemon qblk-io qblk-img" ;;
    nbd) echo "qblk-nbd qblk-io qblk-img" ;;
    *) echo "qblk-io qblk-img" ;;
    esac
}

# Runs one suite against the scratch build; non-zero means it failed.
run_suite() {
    local spec=$1 out=$2 rc
    case $spec in
    unit:*)
        local name=${spec#unit:} path=
        if [ "$name" != "${name#*:}" ]; then
            path=${name#*:}
            name=${name%%:*}
        fi
        # A subshell that outlives the test reports its crash into $out,
        # not onto our stderr.
        (G_TEST_SRCDIR=$src timeout -k 5 $((SUITE_TIMEOUT / 3)) "$build/tests/unit/$name" ${path:+-p "$path"}
         exit $?) >"$out" 2>&1
        rc=$? ;;
    io:*)
        local rest=${spec#io:} fmt tests
        fmt=${rest%%:*}
        tests=${rest#*:}
        [ "$tests" = "$rest" ] && tests=
        QBLK_BUILD=$build timeout -k 5 "$SUITE_TIMEOUT" "$src/tests/iotests/check" -"$fmt" \
            ${tests//,/ } >"$out" 2>&1
        rc=$? ;;
    qmp:*)
        QBLK_BUILD=$build timeout -k 5 "$SUITE_TIMEOUT" "$src/tests/qmp/check" \
            ${spec#qmp:} >"$out" 2>&1
        rc=$? ;;
    daemon-smoke)
        timeout -k 5 "$SUITE_TIMEOUT" python3 "$src/tests/daemon/smoke.py" \
            "$build/qblk-storage-daemon" >"$out" 2>&1
        rc=$? ;;
    nbd)
        timeout -k 5 "$SUITE_TIMEOUT" python3 "$src/tests/nbd/run" "$build" >"$out" 2>&1
        rc=$? ;;
    compat|img-run)
        local script=run
        [ "$spec" = img-run ] && script=img-run
        QBLK_BUILD=$build timeout -k 5 "$SUITE_TIMEOUT" "$src/tests/compat/$script" >"$out" 2>&1
        rc=$? ;;
    *)
        echo "unknown suite '$spec'" >"$out"
        rc=2 ;;
    esac
    return $rc
}

sync_tree
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$src" -Dwerror=true >"$log/setup.log" 2>&1 ||
        { echo "mutants: meson setup failed (see $log/setup.log)" >&2; exit 2; }
fi
echo "== building the unmutated copy in $build"
ninja -C "$build" >"$log/build.log" 2>&1 ||
    { echo "mutants: the unmutated tree does not build (see $log/build.log)" >&2; exit 2; }

# Baseline: every suite used must pass before it can kill anything.
declare -A seen=()
for i in "${selected[@]}"; do
    for s in ${suites[$i]}; do
        seen[$s]=1
    done
done
echo "== baseline: ${#seen[@]} suites on the unmutated copy"
for s in "${!seen[@]}"; do
    if ! run_suite "$s" "$log/baseline.out"; then
        echo "mutants: suite $s fails without any mutant:" >&2
        tail -20 "$log/baseline.out" >&2
        exit 2
    fi
done

killed=0 survived=0 errors=0
orig=$scratch/orig
restore() {
    [ -n "$current" ] && cp "$orig" "$src/$current"
    current=
}
trap restore EXIT
trap 'restore; exit 130' INT TERM
current=
for i in "${selected[@]}"; do
    id=${ids[$i]} file=${files[$i]}
    if [ ! -f "$src/$file" ]; then
        echo "error     $id: no file $file"
        errors=$((errors + 1))
        continue
    fi
    cp "$src/$file" "$orig"
    current=$file
    if ! apply_mutant "$src/$file" "${froms[$i]}" "${tos[$i]}" 2>"$log/$id.apply"; then
        echo "error     $id: $file: $(cat "$log/$id.apply")"
        errors=$((errors + 1))
        restore
        continue
    fi
    targets=$(for s in ${suites[$i]}; do suite_targets "$s"; done | tr ' ' '\n' | sort -u)
    # shellcheck disable=SC2086
    if ! ninja -C "$build" $targets >"$log/$id.build" 2>&1; then
        echo "error     $id: does not compile (see $log/$id.build)"
        errors=$((errors + 1))
        restore
        continue
    fi
    verdict=survived by=
    for s in ${suites[$i]}; do
        run_suite "$s" "$log/$id.out"
        rc=$?
        if [ $rc -ne 0 ]; then
            verdict=killed
            by=$s
            [ $rc -eq 124 ] || [ $rc -eq 137 ] && by="$s (timeout)"
            break
        fi
    done
    restore
    if [ $verdict = killed ]; then
        printf 'killed    %-28s by %s\n' "$id" "$by"
        killed=$((killed + 1))
    else
        printf 'survived  %-28s %s: %s\n' "$id" "$file" "${whats[$i]}"
        survived=$((survived + 1))
    fi
done
# Leave the scratch build matching the tree for the next run.
ninja -C "$build" >/dev/null 2>&1

if [ $errors -gt 0 ]; then
    echo "$killed killed, $survived survived, $errors errors"
else
    echo "$killed killed, $survived survived"
fi
[ $survived -eq 0 ] && [ $errors -eq 0 ]
