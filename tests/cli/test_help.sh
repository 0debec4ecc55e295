#!/usr/bin/env bash
# Help generated from the option tables, usage errors, and exit codes.
source "$(dirname "$0")/lib.sh"
tm --help
expect_rc 0 "--help"
expect_grep "$T/out" "^  ingest " "ingest listed"
expect_grep "$T/out" "^  inspect " "inspect listed"
tm ingest --help
expect_rc 0 "ingest --help"
expect_grep "$T/out" "usage: tokenmill ingest \[options\] INPUT\.\.\." "usage line"
expect_grep "$T/out" "--max-doc-size SIZE.*\(default: 8M\)" "option with default"
expect_grep "$T/out" "--stats-json FILE" "common option listed"
expect_grep "$T/out" "--quiet" "common option listed"
tm inspect --help
expect_grep "$T/out" "--sample N" "inspect options"
tm frobnicate
expect_rc 2 "unknown command"
expect_grep "$T/err" "unknown command 'frobnicate'" "unknown command message"
tm ingest --workdir "$T/w" --no-such-option x
expect_rc 2 "unknown option"
expect_grep "$T/err" "no-such-option" "unknown option named"
tm ingest --workdir "$T/w"
expect_rc 2 "no inputs"
expect_grep "$T/err" "no inputs" "no inputs message"
tm ingest "$T"
expect_rc 2 "missing workdir"
expect_grep "$T/err" "workdir" "missing workdir message"
tm --version
expect_grep "$T/out" "^tokenmill [0-9]+\.[0-9]+\.[0-9]+$" "version"
done_checks
