# Time bounds for the shell suites, sourced by each: a hang in a tool or a
# test case becomes a failure that names it instead of stalling `make check`.
# The bounds are far above what a case takes under ASan on a busy machine
# (the slowest take seconds), so only a hang reaches them; the environment
# may raise them.
QBLK_TOOL_TIMEOUT=${QBLK_TOOL_TIMEOUT:-120}    # one tool invocation
QBLK_CASE_TIMEOUT=${QBLK_CASE_TIMEOUT:-300}    # one test case (iotest, diff seed)
QBLK_SUITE_TIMEOUT=${QBLK_SUITE_TIMEOUT:-3600} # one whole suite (run-tests.sh)
export QBLK_TOOL_TIMEOUT QBLK_CASE_TIMEOUT QBLK_SUITE_TIMEOUT

# bounded SECONDS CMD...: runs CMD, killed (SIGTERM, then SIGKILL 10 s
# later) after SECONDS. Its status is CMD's, or 124/137 after a timeout,
# which also says so on stderr so that the output compared or shown by the
# suite carries the reason.
bounded() {
    local secs=$1 rc
    shift
    timeout -k 10 "$secs" "$@"
    rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "TIMEOUT: killed after ${secs} s: $*" >&2
    fi
    return $rc
}

# bounded_tool CMD...: one tool invocation, bounded by QBLK_TOOL_TIMEOUT.
bounded_tool() {
    bounded "$QBLK_TOOL_TIMEOUT" "$@"
}

# timed_out STATUS: whether a status is bounded's timeout.
timed_out() {
    [ "$1" -eq 124 ] || [ "$1" -eq 137 ]
}
