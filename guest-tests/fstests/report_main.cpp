// icemu-fstests-report: after ./icemu fstests' guest stopped, one row per test: fstests'
// own result (xunit), the crypto path the kernel took, what each controller saw within the
// test's window of the event logs, and icemu-check's device verdicts at the test's end. A
// test fstests passed but a device verdict failed is a failure. Writes a Markdown table,
// JUnit and JSON; exit 0 when no test failed, 1 when one did, 2 on bad input.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "fstests_report.hpp"

namespace fs = std::filesystem;
using namespace icemu::fstests;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& m) {
    std::fprintf(stderr, "icemu-fstests-report: %s\n", m.c_str());
    std::exit(2);
}

std::string slurp(const std::string& p, bool required = true) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        if (required)
            fail("cannot read " + p);
        return "";
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// [from, to) of a file, cut back to whole lines.
std::string slice(const std::string& path, std::uint64_t from, std::uint64_t to) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return "";
    in.seekg(0, std::ios::end);
    std::uint64_t size = static_cast<std::uint64_t>(in.tellg());
    to = std::min(to, size);
    if (from >= to)
        return "";
    std::string s(to - from, '\0');
    in.seekg(static_cast<std::streamoff>(from));
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    auto nl = s.rfind('\n');
    s.resize(nl == std::string::npos ? 0 : nl + 1);
    return s;
}

// Runs argv with stdout+stderr to `out_path`; returns the exit status (-1: did not run).
int run(const std::vector<std::string>& argv, const std::string& out_path) {
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE* f = std::freopen(out_path.c_str(), "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        std::vector<char*> a;
        for (const auto& s : argv)
            a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execv(a[0], a.data());
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

} // namespace

int main(int argc, char** argv) {
    std::string vm, share, checker, junit_path, json_path, table_path, suite = "fstests";
    std::vector<std::pair<std::string, std::string>> logs; // ctrl -> event log
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc)
                fail(a + " needs a value");
            return argv[++i];
        };
        if (a == "--vm")
            vm = val();
        else if (a == "--share")
            share = val();
        else if (a == "--checker")
            checker = val();
        else if (a == "--junit")
            junit_path = val();
        else if (a == "--json")
            json_path = val();
        else if (a == "--table")
            table_path = val();
        else if (a == "--suite")
            suite = val();
        else if (a == "-h" || a == "--help") {
            std::printf("usage: icemu-fstests-report --vm DIR --share DIR --checker ICEMU_CHECK\n"
                        "       [--junit FILE] [--json FILE] [--table FILE] [--suite NAME]\n"
                        "  --vm DIR     icemu-shell's directory (marks.jsonl, CTRL.events.jsonl)\n"
                        "  --share DIR  the guest's share (results/result.xml, dmesg.txt)\n");
            return 0;
        } else
            fail("unknown argument '" + a + "' (--help)");
    }
    if (vm.empty() || share.empty() || checker.empty())
        fail("--vm, --share and --checker are required (--help)");

    std::vector<TestResult> results;
    std::string xunit = share + "/results/result.xml";
    if (fs::exists(xunit)) {
        try {
            results = parse_xunit(slurp(xunit));
        } catch (const std::exception& e) {
            fail(xunit + ": " + e.what());
        }
    }
    std::vector<Window> windows;
    if (fs::exists(vm + "/marks.jsonl")) {
        try {
            windows = test_windows(parse_marks(slurp(vm + "/marks.jsonl")));
        } catch (const std::exception& e) {
            fail(vm + "/marks.jsonl: " + e.what());
        }
    }
    auto klog = split_kernel_log(slurp(share + "/dmesg.txt", false));
    for (const auto& e : fs::directory_iterator(vm)) {
        std::string n = e.path().filename().string();
        const std::string suffix = ".events.jsonl";
        if (n.size() > suffix.size() &&
            n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
            logs.emplace_back(n.substr(0, n.size() - suffix.size()), e.path().string());
    }
    std::sort(logs.begin(), logs.end());

    // A test check ran but whose xunit entry is missing. Without result.xml (check did not
    // finish: killed, or the guest stopped) a finished test's result comes from the files check
    // leaves per test: NAME.notrun, NAME.out.bad (output mismatch), NAME.dmesg (kernel
    // warnings); else it passed. The test in progress, and any test when result.xml exists
    // but lacks it, is a failure.
    bool partial = results.empty();
    for (std::size_t i = 0; i < windows.size(); ++i) {
        const auto& w = windows[i];
        bool found = false;
        for (const auto& r : results)
            found = found || r.name == w.test;
        if (found)
            continue;
        std::string base = share + "/results/" + w.test;
        bool finished =
            i + 1 < windows.size() || (!w.end.empty() && w.end.begin()->second != UINT64_MAX);
        double secs = finished ? w.t1 - w.t0 : 0;
        if (!partial || !finished)
            results.push_back({w.test, "fail",
                               finished ? "no result from fstests (check stopped?)"
                                        : "did not finish (check stopped in it)",
                               secs});
        else if (fs::exists(base + ".notrun"))
            results.push_back({w.test, "notrun", slurp(base + ".notrun", false), secs});
        else if (fs::exists(base + ".out.bad"))
            results.push_back({w.test, "fail", "output mismatch (" + w.test + ".out.bad)", secs});
        else if (fs::exists(base + ".dmesg"))
            results.push_back({w.test, "fail", "kernel warnings (" + w.test + ".dmesg)", secs});
        else
            results.push_back({w.test, "pass", "", secs});
    }
    for (auto& r : results)
        while (!r.message.empty() && r.message.back() == '\n')
            r.message.pop_back();
    if (partial && !results.empty())
        std::printf("icemu-fstests: no result.xml (check did not finish): results from fstests' "
                    "per-test files and the marks\n");

    fs::path work = fs::path(vm) / "per-test";
    fs::create_directories(work);
    std::map<std::string, std::size_t> prev_mismatches;
    std::vector<Row> rows;
    json jrows = json::array();
    for (const auto& r : results) {
        Row row;
        row.fstests = r;
        const Window* w = nullptr;
        for (const auto& x : windows)
            if (x.test == r.name)
                w = &x;
        row.has_window = w != nullptr;
        if (w) {
            std::string safe = r.name;
            std::replace(safe.begin(), safe.end(), '/', '-');
            std::vector<std::string> cargv = {checker, "--device-only", "--expect-evicted",
                                              "--json", (work / (safe + ".check.json")).string()};
            std::vector<std::string> prefixes;
            for (const auto& [ctrl, path] : logs) {
                auto b = w->begin.count(ctrl) ? w->begin.at(ctrl) : 0;
                auto e = w->end.count(ctrl) ? w->end.at(ctrl) : UINT64_MAX;
                std::string part = slice(path, b, e);
                std::ofstream(work / (safe + "." + ctrl + ".events.jsonl"), std::ios::binary)
                    << part;
                try {
                    row.device[ctrl] = count_events(part);
                } catch (const std::exception& ex) {
                    row.verdicts.push_back({"log", "fail", ctrl + ": " + ex.what()});
                }
                // icemu-check replays from the realize: the log up to the test's end.
                std::string pre = (work / (safe + "." + ctrl + ".prefix.jsonl")).string();
                std::ofstream(pre, std::ios::binary) << slice(path, 0, e);
                prefixes.push_back(pre);
                cargv.push_back("--log");
                cargv.push_back(ctrl + "=" + pre);
            }
            std::string out = (work / (safe + ".check.txt")).string();
            int rc = logs.empty() ? -1 : run(cargv, out);
            for (const auto& p : prefixes)
                fs::remove(p);
            json v =
                json::parse(slurp((work / (safe + ".check.json")).string(), false), nullptr, false);
            if (rc < 0 || rc > 1 || !v.is_object()) {
                row.verdicts.push_back({"icemu-check", "fail",
                                        "icemu-check gave no verdict (exit " + std::to_string(rc) +
                                            "): " + slurp(out, false)});
            } else {
                for (const auto& x : v["verdicts"]) {
                    Verdict vd{x.value("name", ""), x.value("status", ""), x.value("reason", "")};
                    if (vd.name == "replay") {
                        // A contradiction stays in every later prefix: it belongs to the test
                        // in which the count of them grew.
                        std::size_t n = 0;
                        for (const auto& [ctrl, c] : v["controllers"].items())
                            n += c.value("mismatches", json::array()).size();
                        if (vd.status == "fail" && n == prev_mismatches["all"])
                            vd = {"replay", "pass",
                                  "no new contradiction (earlier ones belong to an earlier test)"};
                        prev_mismatches["all"] = n;
                    }
                    if (vd.name == "keys-evicted")
                        vd.reason = vd.status == "pass" ? "no keyslot holds a key after the test"
                                                        : vd.reason;
                    row.verdicts.push_back(vd);
                }
            }
        }
        auto k = klog.count(r.name) ? klog.at(r.name) : KernelLog{};
        row.path = crypto_path(k, row.device);
        merge(row);
        json jr = {{"test", r.name},
                   {"status", row.status},
                   {"reason", row.reason},
                   {"fstests", r.status},
                   {"fstests_message", r.message},
                   {"seconds", r.seconds},
                   {"crypto_path", row.path},
                   {"native_modes", k.native},
                   {"fallback_modes", k.fallback},
                   {"device", json::object()},
                   {"verdicts", json::array()}};
        for (const auto& [ctrl, c] : row.device)
            jr["device"][ctrl] = {{"programs", c.programs},  {"program_errors", c.program_errors},
                                  {"evicts", c.evicts},      {"ce_writes", c.ce_writes},
                                  {"ce_reads", c.ce_reads},  {"refused", c.refused},
                                  {"plain_ios", c.plain_ios}};
        for (const auto& v : row.verdicts)
            jr["verdicts"].push_back(
                {{"name", v.name}, {"status", v.status}, {"reason", v.reason}});
        jrows.push_back(jr);
        rows.push_back(std::move(row));
    }

    double total = 0;
    unsigned pass = 0, failn = 0, notrun = 0;
    for (const auto& r : rows) {
        total += r.fstests.seconds;
        pass += r.status == "pass";
        failn += r.status == "fail";
        notrun += r.status == "notrun";
    }
    std::string t = table(rows);
    std::printf("%s", t.c_str());
    std::printf("icemu-fstests: %zu tests: %u passed, %u failed, %u not run (fstests and the "
                "device's verdicts)\n",
                rows.size(), pass, failn, notrun);
    if (!table_path.empty())
        std::ofstream(table_path) << t;
    if (!junit_path.empty())
        std::ofstream(junit_path) << junit(rows, suite, total);
    if (!json_path.empty())
        std::ofstream(json_path) << json{{"suite", suite}, {"tests", jrows}}.dump(1) << "\n";
    if (rows.empty()) {
        std::fprintf(stderr, "icemu-fstests-report: fstests reported no test (no %s)\n",
                     xunit.c_str());
        return 1;
    }
    return failn ? 1 : 0;
}
