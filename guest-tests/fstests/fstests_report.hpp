// The host side of ./icemu fstests after the guest stopped: fstests' xunit results, the test
// boundaries icemu-shell recorded in the device event logs (marks.jsonl), the guest's kernel
// log split per test, and the device verdicts, merged into one row per test (a test fstests
// passed but the device judged is a failure) and written as a table and as JUnit.
#pragma once
#include "icemu/models/events.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace icemu::fstests {

// One <testcase> of fstests' result.xml (check -R xunit).
struct TestResult {
    std::string name;    // "generic/548"
    std::string status;  // "pass", "fail", "notrun"
    std::string message; // the notrun reason or the failure message
    double seconds = 0;
};
// Throws std::runtime_error when the text holds no <testsuite>.
std::vector<TestResult> parse_xunit(const std::string& xml);

// One line of icemu-shell's marks.jsonl: what the guest said and each controller's event
// log size (bytes) at that moment.
struct Mark {
    std::string text;
    double t = 0;
    std::map<std::string, std::uint64_t> logs;
};
std::vector<Mark> parse_marks(const std::string& jsonl);

// A test's share of the event logs: from its "run xfstest NAME" mark (written by fstests'
// check through LOGGER_PROG right before the test) to the next mark, which includes check's
// own post-test fsck and unmount.
struct Window {
    std::string test;
    double t0 = 0, t1 = 0;
    std::map<std::string, std::uint64_t> begin, end;
};
std::vector<Window> test_windows(const std::vector<Mark>& marks);

// The kernel log lines of one test (between check's "run fstests NAME at ..." lines) and what
// fscrypt said about the implementation it picked.
struct KernelLog {
    std::vector<std::string> lines;
    std::vector<std::string> native;   // "AES-256-XTS" from "... using blk-crypto (native)"
    std::vector<std::string> fallback; // from "... using blk-crypto-fallback"
    std::vector<std::string> software; // from "... using implementation ..." (no inlinecrypt)
};
// `kmsg` is /dev/kmsg text ("6,1234,5678,-;message") or plain dmesg lines.
std::map<std::string, KernelLog> split_kernel_log(const std::string& kmsg);

// What one controller saw within a test's window.
using DeviceCounts = icemu::models::events::Tally;
// Counts the event-log lines in `slice` (whole lines of a log).
DeviceCounts count_events(const std::string& slice);

struct Verdict {
    std::string name, status, reason; // status: pass, fail, not-applicable
};

// "native", "fallback", "native+fallback", "software" or "-" (no crypto I/O seen): the
// device's crypto I/O in the window and fscrypt's kernel log lines. fscrypt logs its choice
// once per mode and boot, so a later test of a fallback mode shows "-" unless the device saw
// crypto I/O.
std::string crypto_path(const KernelLog& k, const std::map<std::string, DeviceCounts>& dev);

struct Row {
    TestResult fstests;
    bool has_window = false;
    std::map<std::string, DeviceCounts> device;
    std::vector<Verdict> verdicts;
    std::string path;   // crypto_path()
    std::string status; // pass, fail, notrun
    std::string reason;
};
// The merge: a device verdict that failed makes the test fail (with the verdict as the
// reason), whatever fstests said; a test fstests reported but no mark covers gets the
// verdict "not-applicable".
void merge(Row& row);

std::string table(const std::vector<Row>& rows);
std::string junit(const std::vector<Row>& rows, const std::string& suite, double seconds);

std::string xml_escape(const std::string& s);

} // namespace icemu::fstests
