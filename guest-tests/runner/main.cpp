// icemu-run: boots the guest for each scenario, drives its steps over virtio-serial,
// snapshots every controller's crypto-state over QMP after each step, and reports TAP on
// stdout, JUnit XML with --junit, progress and a one-line summary on stderr.
// Usage: docs/conformance.md.
#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "cmdline.hpp"
#include "defaults.hpp"
#include "machine.hpp"
#include "record.hpp"
#include "report.hpp"
#include "scenario.hpp"

namespace fs = std::filesystem;
using namespace icemu::runner;

namespace {

struct Options {
    std::vector<std::string> scenarios;
    std::string qemu, kernel, initrd, artifacts, junit, checker;
    bool keep = false;
    bool list = false;
    bool print_accel = false; // print the accelerator --accel auto picks for --qemu, and exit
    bool crypto_off = false;
    bool with_fixes = false;    // the kernel carries guest-tests/kernel/fixes: bug rules off
    double timeout = 0;         // per-scenario override
    unsigned jobs = 1;          // vCPUs of scenario VMs that may run at once
    unsigned boot_retries = 1;  // boots again when a guest never says hello
    std::string accel = "auto"; // auto: KVM when /dev/kvm is usable, else TCG
    std::string identity;       // --pci-identity for every UFS controller
};

[[noreturn]] void usage(int code) {
    std::fprintf(
        code ? stderr : stdout,
        "usage: icemu-run [--scenario FILE|NAME]... [--kernel BZIMAGE] [--qemu QEMU]\n"
        "                 [--initrd CPIO] [--artifacts DIR] [--keep] [--junit FILE]\n"
        "                 [--timeout SECONDS] [--crypto off] [--accel auto|kvm|tcg] [--list]\n"
        "                 [--checker ICEMU_CHECK | --no-check] [--pci-identity qemu|intel-mtl]\n"
        "                 [--with-fixes] [--print-accel] [--jobs N] [--boot-retries N]\n"
        "--jobs N: run scenarios side by side, their VMs' vCPUs adding up to at most N (a\n"
        "  scenario with more vCPUs than N runs alone); the report keeps the scenarios'\n"
        "  order. Default 1.\n"
        "--boot-retries N: a guest that gives no hello within the boot timeout is booted\n"
        "  again up to N times (0-3, default 1); each failed boot is reported as a SKIP point\n"
        "  \"boot attempt K\" with each vCPU's RIP and the backtraces an NMI made the guest\n"
        "  print, its logs kept in attempt-K/.\n"
        "--print-accel: print kvm or tcg, what --accel auto picks for this QEMU and --kernel\n"
        "  (the reason on stderr), and exit; scripts that start QEMU another way (e.g. vng)\n"
        "  use it.\n"
        "--with-fixes: the kernel was built with guest-tests/kernel/fixes (./icemu kernel\n"
        "  --with-fixes); the kernel rule table's bugs are off, so their expected failures must\n"
        "  pass (a bug that still shows is a failure).\n"
        "Without --scenario, runs the default set from %s.\n"
        "Defaults (override with the options or ICEMU_QEMU / ICEMU_KERNEL / ICEMU_INITRD):\n"
        "  qemu   %s\n  kernel %s\n  initrd %s\n",
        ICEMU_SCENARIO_DIR, ICEMU_DEFAULT_QEMU, ICEMU_DEFAULT_KERNEL, ICEMU_DEFAULT_INITRD);
    std::exit(code);
}

std::string env_or(const char* name, const char* dflt) {
    const char* v = std::getenv(name);
    return v && *v ? v : dflt;
}

// A whole number from lo to hi given to option `opt`; anything else ends the run with one line.
unsigned count_arg(const char* opt, const std::string& v, unsigned lo, unsigned hi) {
    char* end = nullptr;
    const unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end || n < lo || n > hi) {
        std::fprintf(stderr, "icemu-run: %s must be a number from %u to %u, not '%s'\n", opt, lo,
                     hi, v.c_str());
        std::exit(2);
    }
    return static_cast<unsigned>(n);
}

Options parse_args(int argc, char** argv) {
    Options o;
    o.qemu = env_or("ICEMU_QEMU", ICEMU_DEFAULT_QEMU);
    o.kernel = env_or("ICEMU_KERNEL", ICEMU_DEFAULT_KERNEL);
    o.initrd = env_or("ICEMU_INITRD", ICEMU_DEFAULT_INITRD);
    o.checker = env_or("ICEMU_CHECK", ICEMU_DEFAULT_CHECKER);
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc)
                usage(2);
            return argv[++i];
        };
        if (a == "--scenario" || a == "-s")
            o.scenarios.push_back(val());
        else if (a == "--qemu")
            o.qemu = val();
        else if (a == "--kernel")
            o.kernel = val();
        else if (a == "--initrd")
            o.initrd = val();
        else if (a == "--artifacts")
            o.artifacts = val();
        else if (a == "--junit")
            o.junit = val();
        else if (a == "--timeout") {
            const std::string v = val();
            try {
                o.timeout = parse_seconds(v);
            } catch (const std::invalid_argument& e) {
                std::fprintf(stderr, "icemu-run: --timeout: %s\n", e.what());
                std::exit(2);
            }
        } else if (a == "--checker")
            o.checker = val();
        else if (a == "--no-check")
            o.checker.clear();
        else if (a == "--keep")
            o.keep = true;
        else if (a == "--with-fixes")
            o.with_fixes = true;
        else if (a == "--pci-identity") {
            o.identity = val();
            if (o.identity != "qemu" && o.identity != "intel-mtl") {
                std::fprintf(stderr, "icemu-run: --pci-identity must be qemu or intel-mtl\n");
                std::exit(2);
            }
        } else if (a == "--accel") {
            o.accel = val();
            if (o.accel != "auto" && o.accel != "kvm" && o.accel != "tcg") {
                std::fprintf(stderr, "icemu-run: --accel must be auto, kvm or tcg\n");
                std::exit(2);
            }
        } else if (a == "--boot-retries")
            o.boot_retries = count_arg("--boot-retries", val(), 0, 3);
        else if (a == "--jobs" || a == "-j")
            o.jobs = count_arg("--jobs", val(), 1, 64);
        else if (a == "--list")
            o.list = true;
        else if (a == "--print-accel")
            o.print_accel = true;
        else if (a == "--crypto") {
            std::string v = val();
            if (v != "off" && v != "auto")
                usage(2);
            o.crypto_off = v == "off";
        } else if (a == "--help" || a == "-h")
            usage(0);
        else {
            std::fprintf(stderr, "icemu-run: unknown argument %s\n", a.c_str());
            usage(2);
        }
    }
    return o;
}

std::vector<std::string> default_scenarios() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(ICEMU_SCENARIO_DIR, ec))
        if (e.path().extension() == ".json")
            out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
}

std::string resolve_scenario(const std::string& s) {
    if (fs::exists(s))
        return s;
    std::string p = std::string(ICEMU_SCENARIO_DIR) + "/" + s + ".json";
    if (fs::exists(p))
        return p;
    throw ScenarioError("no scenario file or name '" + s + "' (looked in " ICEMU_SCENARIO_DIR ")");
}

void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
}

std::uint64_t file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

void progress(const std::string& scen, const std::string& msg) {
    std::fprintf(stderr, "[%s] %s\n", scen.c_str(), msg.c_str());
    std::fflush(stderr);
}

class ScenarioRun {
public:
    ScenarioRun(const Scenario& s, const Options& o, const EngineOptions& e, std::string dir)
        : s_(s), o_(o), e_(e) {
        paths_ = {o.qemu, o.kernel, o.initrd, std::move(dir), o.accel, ""};
        rec_.engine = e.props_supported;
        rec_.with_fixes = o.with_fixes;
    }

    ScenarioResult run() {
        double t0 = now_s();
        ScenarioResult res;
        res.name = s_.name;
        try {
            execute(res);
        } catch (const std::exception& ex) {
            TestPoint p{s_.name, "runner", false, "", ex.what(), 0};
            res.points.push_back(p);
        }
        qemu_.kill_now();
        collect_events();
        res.skip = skip_;
        if (!preflight_.empty()) {
            res.points.push_back({s_.name, "preflight: crypto=on disks show queue/crypto", false,
                                  "", preflight_, 0});
        } else if (booted_ && skip_.empty()) {
            for (const auto& st : rec_.steps)
                res.points.push_back(check_step(s_, st));
            for (std::size_t i = rec_.steps.size(); i < s_.steps.size(); ++i) {
                TestPoint p{s_.name, "step " + std::to_string(i + 1) + " " + s_.steps[i].op, false,
                            "",      "not run (an earlier step left the guest unusable)",    0};
                res.points.push_back(p);
            }
            for (const auto& x : s_.expectations)
                res.points.push_back(check_expectation(s_, x, rec_));
        }
        res.seconds = now_s() - t0;
        write_file(paths_.dir + "/run.json", rec_.to_json().dump(1));
        return res;
    }

    const RunRecord& record() const { return rec_; }
    const std::string& preflight() const { return preflight_; }

private:
    void make_images() {
        for (const auto& c : s_.controllers)
            for (const auto& lu : c.lus)
                make_image(lu_image(paths_, c, lu), lu.size);
        for (const auto& d : s_.virtio_disks)
            make_image(virtio_image(paths_, d), d.size);
    }

    // Starts QEMU and waits for the guest program's hello: "" when it came, else why not,
    // with what the hung guest shows (QEMU is stopped by then). A QEMU that does not start
    // or connect throws: booting again would not help.
    std::string boot_once(const std::vector<std::string>& argv, double deadline) {
        UnixListener qmp_l(qmp_socket(paths_)), guest_l(guest_socket(paths_));
        const double t0 = now_s();
        qemu_.start(argv, paths_.dir + "/qemu.log");
        progress(s_.name, "booting (artifacts: " + paths_.dir + ")");
        int qfd = qmp_l.accept_until(std::min(deadline, t0 + 30));
        int gfd = qfd >= 0 ? guest_l.accept_until(std::min(deadline, t0 + 30)) : -1;
        if (qfd < 0 || gfd < 0)
            throw std::runtime_error("QEMU did not connect its sockets; qemu.log:\n" +
                                     tail(paths_.dir + "/qemu.log", 20));
        qmp_.attach(qfd);
        guest_.reset(gfd);
        std::string err;
        if (!qmp_.handshake(now_s() + 10, err))
            throw std::runtime_error(err + "; qemu.log:\n" + tail(paths_.dir + "/qemu.log", 20));
        rec_.hello = wait_hello(std::min(deadline, now_s() + 120));
        if (rec_.hello.is_null())
            return "no hello from the guest within the boot timeout; " + hung_guest_report();
        return "";
    }

    // The guest program's hello (the first line that is one), or null at the deadline.
    json wait_hello(double deadline) {
        std::string line;
        while (guest_.read_line(line, deadline)) {
            json h = json::parse(line, nullptr, false);
            if (h.is_object() && h.contains("hello"))
                return h;
        }
        return nullptr;
    }

    // What a guest that stopped answering shows: each vCPU's RIP and halt state, then an NMI
    // (the guest runs with unknown_nmi_panic panic_print=0x40, so its kernel panics with
    // every CPU's backtrace on the console, and panic=-1 with -no-reboot ends QEMU), then the
    // console and qemu.log tails.
    std::string hung_guest_report() {
        std::string cpus;
        const json regs =
            qmp_.execute("human-monitor-command", {{"command-line", "info registers -a"}}, 10);
        if (regs.contains("return") && regs["return"].is_string()) {
            std::istringstream in(regs["return"].get<std::string>());
            for (std::string l; std::getline(in, l);)
                if (l.rfind("CPU#", 0) == 0 || l.rfind("RIP=", 0) == 0)
                    cpus += "  " + l + "\n";
        }
        const bool nmi = qmp_.execute("inject-nmi", json::object(), 10).contains("return");
        if (nmi)
            qemu_.wait_until(now_s() + 15);
        qemu_.kill_now();
        return std::string("vCPUs:\n") + (cpus.empty() ? "  (no answer)\n" : cpus) +
               (nmi ? "console tail after an NMI:\n" : "console tail (no NMI sent):\n") +
               tail(console_log(paths_), 150) + "qemu.log:\n" + tail(paths_.dir + "/qemu.log", 10);
    }

    // Moves the failed boot's console, QEMU log and event logs to attempt-N/ with `report`
    // (report.txt) and makes fresh disk images for the next boot; returns the directory.
    std::string keep_failed_boot(unsigned attempt, const std::string& report) {
        const std::string dir = paths_.dir + "/attempt-" + std::to_string(attempt);
        fs::create_directories(dir);
        write_file(dir + "/report.txt", report + "\n");
        std::vector<std::string> files = {console_log(paths_), paths_.dir + "/qemu.log"};
        for (const auto& c : s_.controllers)
            files.push_back(event_log_path(paths_, c));
        std::error_code ec;
        for (const auto& f : files)
            if (fs::exists(f))
                fs::rename(f, dir + "/" + fs::path(f).filename().string(), ec);
        make_images();
        return dir;
    }

    void execute(ScenarioResult& res) {
        fs::create_directories(paths_.dir);
        make_images();
        for (const auto& c : s_.controllers)
            if (c.wrapped_keys && crypto_enabled(c, e_) &&
                !(c.is_emmc() ? e_.emmc_wrapped_supported : e_.wrapped_supported))
                throw std::runtime_error(c.id +
                                         " asks for hardware-wrapped keys, but this QEMU's " +
                                         (c.is_emmc() ? "sdhci-pci" : "ufs") +
                                         " device has no crypto-wrapped-keys property (no "
                                         "hardware key manager)");
        auto argv = qemu_argv(s_, paths_, e_);
        write_file(paths_.dir + "/qemu-cmdline.sh", "#!/bin/sh\n" + shell_join(argv) + "\n");
        const double budget_s = o_.timeout > 0 ? o_.timeout : s_.timeout_s;
        double t0 = now_s();
        double deadline = t0 + budget_s;
        for (unsigned attempt = 1;; ++attempt) {
            const std::string why = boot_once(argv, deadline);
            if (why.empty())
                break;
            if (attempt > o_.boot_retries)
                throw std::runtime_error(why);
            // Keep what the failed boot left, say so in the report, and boot again with the
            // scenario's whole time budget: a guest that never says hello fails every attempt.
            const std::string kept = keep_failed_boot(attempt, why);
            progress(s_.name, "boot attempt " + std::to_string(attempt) +
                                  " gave no hello; booting again (evidence: " + kept + ")");
            res.points.push_back(TestPoint::skipped(
                s_.name, "boot attempt " + std::to_string(attempt),
                "retried (--boot-retries " + std::to_string(o_.boot_retries) +
                    "): no hello within the boot timeout; vCPU state, console and the NMI's "
                    "backtraces in " +
                    kept + "/report.txt"));
            t0 = now_s();
            deadline = t0 + budget_s;
        }
        rec_.boot_seconds = now_s() - t0;
        booted_ = true;
        char b[128];
        std::snprintf(b, sizeof b, "guest up in %.2fs (kernel %s, guest uptime %.2fs)",
                      rec_.boot_seconds, rec_.hello.value("release", "?").c_str(),
                      rec_.hello.value("uptime_s", 0.0));
        progress(s_.name, b);
        res.points.push_back(
            {s_.name, "boot: the guest program said hello", true, "", b, rec_.boot_seconds});
        if (std::string why = kernel_skip_reason(s_.kernel, rec_); !why.empty()) {
            // The whole scenario needs another kernel: one SKIP point, no steps, no checker.
            skip_ = why;
            progress(s_.name, "SKIP: " + why);
            res.points.push_back(TestPoint::skipped(s_.name, "scenario " + s_.name, why));
            guest_.write_line(json{{"id", 1000000}, {"op", "poweroff"}}.dump());
            if (qemu_.wait_until(now_s() + 15) < 0)
                progress(s_.name, "QEMU did not exit after poweroff; killed");
            return;
        }
        json disks = request({{"id", 0}, {"op", "disks"}}, 30);
        if (!disks.is_object() || !disks.value("ok", false))
            throw std::runtime_error("the initial disks request failed: " + disks.dump());
        rec_.boot_disks = disks;
        rec_.disk_map = map_disks(s_, disks);
        for (const auto& [name, d] : rec_.disk_map)
            if (d.is_null())
                throw std::runtime_error("scenario disk '" + name +
                                         "' not found in the guest: " + disks.dump());
        preflight_ = crypto_preflight(s_, rec_.disk_map, e_.props_supported && !e_.force_off);
        if (!preflight_.empty()) {
            guest_.write_line(json{{"id", 1000000}, {"op", "poweroff"}}.dump());
            qemu_.wait_until(now_s() + 15);
            return;
        }
        snapshot();
        Lookup vars = base_lookup(s_, rec_);
        for (std::size_t i = 0; i < s_.steps.size(); ++i) {
            if (now_s() > deadline)
                throw std::runtime_error("scenario timeout");
            if (!run_step(i, vars))
                break;
        }
        if (!powered_off_) {
            guest_.write_line(json{{"id", 1000000}, {"op", "poweroff"}}.dump());
        }
        if (qemu_.wait_until(now_s() + 15) < 0)
            progress(s_.name, "QEMU did not exit after poweroff; killed");
    }

    bool run_step(std::size_t i, Lookup& vars) {
        const Step& step = s_.steps[i];
        StepRecord rec;
        rec.index = i + 1;
        rec.op = step.op;
        rec.label = step.label;
        double t0 = now_s();
        bool keep_going = true;
        if (std::string why = kernel_skip_reason(step.kernel, rec_); !why.empty()) {
            rec.skipped = why;
            progress(s_.name, "step " + std::to_string(rec.index) + "/" +
                                  std::to_string(s_.steps.size()) + " " + step.op +
                                  (step.label.empty() ? "" : " [" + step.label + "]") +
                                  " ... SKIP (" + why + ")");
            rec_.steps.push_back(rec);
            snapshot(); // keeps snapshots[i] = after step i
            return true;
        }
        try {
            json args = substitute(step.args, vars);
            rec.expect = substitute(step.expect, vars);
            if (step.op == "reboot") {
                rec.request = {{"execute", "system_reset"}};
                rec.reply = reboot(step.timeout_s);
                if (!rec.reply.value("ok", false)) {
                    rec.error = rec.reply.value("error", std::string("reboot failed"));
                    keep_going = false;
                } else {
                    bind_disks(vars, rec.reply["disk_map"]);
                }
            } else if (step.host_only()) {
                rec.request = {
                    {"execute", "qom-set"},
                    {"arguments",
                     {{"path", "/machine/peripheral/" + args.at("ctrl").get<std::string>()},
                      {"property", args.at("property")},
                      {"value", args.at("value")}}}};
                json r = qmp_.execute("qom-set", rec.request["arguments"], step.timeout_s);
                rec.reply = {{"ok", r.is_object() && r.contains("return")}, {"qmp", r}};
                if (!rec.reply["ok"].get<bool>())
                    rec.reply["error"] = r.dump();
            } else {
                rec.request = args;
                rec.request["id"] = rec.index;
                rec.request["op"] = step.op;
                rec.reply = request(rec.request, step.timeout_s);
                if (rec.reply.is_null()) {
                    rec.error = guest_.eof()
                                    ? "the guest closed the channel (crashed or powered off)"
                                    : "no reply within " + std::to_string(step.timeout_s) + "s";
                    if (step.op != "poweroff")
                        rec.error += "; console tail:\n" + tail(console_log(paths_), 20);
                    keep_going = false;
                }
                if (step.op == "poweroff") {
                    powered_off_ = true;
                    keep_going = false;
                }
            }
            for (const auto& [var, ptr] : step.save.items()) {
                std::string p = ptr.get<std::string>();
                json::json_pointer jp(p[0] == '/' ? p : "/" + p);
                if (rec.reply.is_object() && rec.reply.contains(jp))
                    vars[var] = rec.reply.at(jp);
            }
        } catch (const std::exception& ex) {
            rec.error = ex.what();
        }
        rec.seconds = now_s() - t0;
        bool ok = check_step(s_, rec).passed;
        char b[256];
        std::snprintf(b, sizeof b, "step %zu/%zu %s%s ... %s %.2fs", rec.index, s_.steps.size(),
                      step.op.c_str(), step.label.empty() ? "" : (" [" + step.label + "]").c_str(),
                      ok ? "ok" : "FAILED", rec.seconds);
        progress(s_.name, b);
        if (!ok && !rec.error.empty())
            progress(s_.name, "  " + rec.error.substr(0, 300));
        else if (!ok && rec.reply.is_object())
            progress(s_.name, "  " + rec.reply.value("error", std::string("(unexpected success)")));
        rec_.steps.push_back(rec);
        if (!powered_off_)
            snapshot();
        return keep_going;
    }

    // Host op "reboot": a machine reset (QMP system_reset: every device is reset, the guest
    // boots again from the same kernel and initramfs, the disk images keep their contents). The
    // machine runs with -no-reboot, which turns a reset into a shutdown, so the reboot action
    // is "reset" for this one and "shutdown" again once the guest is back. The reply carries
    // the new guest's hello, its disks and "disk_map", the scenario disks found again by their
    // controller and LUN: sd probes run asynchronously, so two LUs may swap sdX names across a
    // reboot. The caller rebinds ${disk} for the later steps from it, and icemu-check reads it
    // (a disk not found again fails the step).
    json reboot(double timeout_s) {
        auto qmp_ok = [](const json& r) { return r.is_object() && r.contains("return"); };
        json r = qmp_.execute("set-action", {{"reboot", "reset"}}, 10);
        if (!qmp_ok(r))
            return {{"ok", false}, {"error", "QMP set-action reboot=reset: " + r.dump()}};
        r = qmp_.execute("system_reset", json::object(), 10);
        if (!qmp_ok(r))
            return {{"ok", false}, {"error", "QMP system_reset: " + r.dump()}};
        double t0 = now_s(), deadline = t0 + std::max(timeout_s, 30.0);
        const json hello = wait_hello(deadline);
        if (hello.is_null())
            return {{"ok", false},
                    {"error", "no hello from the guest after the reset; " + hung_guest_report()}};
        double up = now_s() - t0;
        r = qmp_.execute("set-action", {{"reboot", "shutdown"}}, 10);
        if (!qmp_ok(r))
            return {{"ok", false}, {"error", "QMP set-action reboot=shutdown: " + r.dump()}};
        json disks = request({{"id", 1000001}, {"op", "disks"}}, 30);
        if (!disks.is_object() || !disks.value("ok", false))
            return {{"ok", false}, {"error", "disks after the reboot failed: " + disks.dump()}};
        std::string lost, moved;
        json map = json::object();
        for (const auto& [name, d] : map_disks(s_, disks)) {
            map[name] = d;
            const json& before = rec_.disk_map[name];
            if (d.is_null())
                lost += " " + name;
            else if (before.is_object() && d.value("dev_path", "") != before.value("dev_path", ""))
                moved += " " + name + " " + before.value("dev_path", "?") + " -> " +
                         d.value("dev_path", "?") + ";";
        }
        json reply = {{"ok", lost.empty()},     {"hello", hello},
                      {"seconds_to_hello", up}, {"disks", disks["disks"]},
                      {"disk_map", map},        {"kmsg", hello.value("kmsg", json::array())}};
        if (!lost.empty())
            reply["error"] = "disks not found after the reboot:" + lost;
        if (!moved.empty())
            progress(s_.name, "  disks came back under other device nodes:" + moved);
        return reply;
    }

    json request(const json& req, double timeout_s) {
        if (!guest_.write_line(req.dump()))
            return nullptr;
        double deadline = now_s() + timeout_s;
        std::string line;
        while (guest_.read_line(line, deadline)) {
            json r = json::parse(line, nullptr, false);
            if (r.is_object() && r.value("id", json()) == req["id"])
                return r;
        }
        return nullptr;
    }

    void snapshot() {
        std::map<std::string, json> snap;
        std::map<std::string, std::uint64_t> marks;
        for (const auto& c : s_.controllers) {
            json r = qmp_.execute(
                "qom-get", {{"path", "/machine/peripheral/" + c.id}, {"property", "crypto-state"}},
                10);
            snap[c.id] = r.is_object() && r.contains("return") ? r["return"] : json(nullptr);
            marks[c.id] = file_size(event_log_path(paths_, c));
        }
        rec_.snapshots.push_back(snap);
        rec_.event_marks.push_back(marks);
    }

    void collect_events() {
        for (const auto& c : s_.controllers) {
            std::string p = event_log_path(paths_, c);
            if (fs::exists(p))
                rec_.events[c.id] = parse_event_log(read_file(p));
        }
    }

    static void make_image(const std::string& path, std::uint64_t size) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0)
            throw std::runtime_error("create image " + path + ": " + std::strerror(errno));
        ::close(fd);
    }

    const Scenario& s_;
    const Options& o_;
    EngineOptions e_;
    MachinePaths paths_;
    RunRecord rec_;
    QemuProcess qemu_;
    Qmp qmp_;
    LineChannel guest_;
    bool booted_ = false;
    bool powered_off_ = false;
    std::string skip_;      // the scenario's kernel condition does not hold
    std::string preflight_; // why the guest cannot use the engine at all (crypto_preflight)
};

bool check_inputs(const Options& o) {
    bool ok = true;
    for (auto [what, path] :
         {std::pair{"qemu", o.qemu}, {"kernel", o.kernel}, {"initrd", o.initrd}})
        if (path.empty() || !fs::exists(path)) {
            std::fprintf(stderr, "icemu-run: %s not found: '%s' (pass --%s)\n", what, path.c_str(),
                         what);
            ok = false;
        }
    return ok;
}

// Runs icemu-check on one scenario's artifacts and turns each invariant's verdict into a
// test point ("not-applicable" passes, with its reason as the diagnostic).
// A verdict named in the scenario's "checker_xfail" is an expected failure (a known kernel bug)
// where its "when" condition holds for the run's kernel (always without one).
std::vector<TestPoint> checker_points(const std::string& checker, const Scenario& s,
                                      const std::string& dir, const RunRecord& rec) {
    std::vector<TestPoint> out;
    const std::string& scenario = s.name;
    std::map<std::string, std::string> xfail;
    for (const auto& [name, reason] : s.checker_xfail) {
        auto w = s.checker_xfail_when.find(name);
        if (w == s.checker_xfail_when.end() ||
            kernel_matches(w->second, guest_release(rec), rec.with_fixes))
            xfail[name] = reason;
    }
    std::string json_path = dir + "/check.json";
    std::vector<std::string> cmd = {checker, "--quiet", "--json", json_path};
    if (rec.with_fixes)
        cmd.push_back("--with-fixes");
    cmd.push_back(dir);
    std::string text = capture(cmd, 600);
    write_file(dir + "/check.txt", text);
    json v;
    try {
        std::ifstream in(json_path);
        v = json::parse(in);
    } catch (const std::exception& ex) {
        out.push_back({scenario, "icemu-check ran and judged the run", false, "",
                       std::string("no verdicts (") + ex.what() + "): " + text, 0});
        return out;
    }
    for (const auto& x : v.value("verdicts", json::array())) {
        std::string status = x.value("status", "");
        std::string name = "icemu-check " + x.value("name", "?") + ": " + x.value("title", "");
        std::string diag = status + ": " + x.value("reason", "");
        if (x.contains("details") && !x["details"].empty())
            diag += "\n" + x["details"].dump(1);
        auto xf = xfail.find(x.value("name", ""));
        out.push_back(
            {scenario, name, status != "fail", xf == xfail.end() ? "" : xf->second, diag, 0});
    }
    if (out.empty())
        out.push_back({scenario, "icemu-check ran and judged the run", false, "",
                       "icemu-check produced no verdicts: " + text, 0});
    return out;
}

// One scenario: boot, steps, checker; its artifacts in `dir`. A preflight failure (the run
// cannot start at all) is left in `stop`.
ScenarioResult run_one(const Scenario& s, const std::string& file, const Options& o,
                       const EngineOptions& eng, const std::string& dir, std::string& stop) {
    fs::remove_all(dir);
    if (o.identity == "intel-mtl" && std::any_of(s.controllers.begin(), s.controllers.end(),
                                                 [](const Controller& c) { return c.is_emmc(); })) {
        // A stock kernel drives UFS crypto through Intel's identity; for the eMMC no
        // mainline sdhci-pci identity sets MMC_CAP2_CRYPTO, so its disks have none.
        ScenarioResult r;
        r.name = s.name;
        r.skip = "eMMC crypto needs icemu's sdhci-pci patch; no mainline PCI identity "
                 "enables it (--pci-identity intel-mtl covers UFS only)";
        r.points.push_back(TestPoint::skipped(s.name, "scenario " + s.name, r.skip));
        progress(s.name, "SKIP: " + r.skip);
        return r;
    }
    ScenarioRun run(s, o, eng, dir);
    ScenarioResult r = run.run();
    if (!run.preflight().empty()) {
        stop = run.preflight();
        return r;
    }
    std::error_code cec;
    fs::copy_file(file, dir + "/scenario.json", fs::copy_options::overwrite_existing, cec);
    if (!o.checker.empty() && r.skip.empty()) {
        progress(s.name, "icemu-check (the reference models judge the run)");
        try {
            for (auto& p : checker_points(o.checker, s, dir, run.record()))
                r.points.push_back(std::move(p));
        } catch (const ScenarioError& e) { // a release outside the kernel rule table
            r.points.push_back(
                {s.name, "icemu-check ran and judged the run", false, "", e.what(), 0});
        }
    }
    std::size_t failed = 0;
    for (const auto& p : r.points)
        failed += !p.ok();
    if (!r.ok() || o.keep)
        r.artifacts = dir;
    else
        fs::remove_all(dir);
    char b[256];
    std::snprintf(b, sizeof b, "%s: %zu checks, %zu failed, %.1fs%s%s", r.ok() ? "PASS" : "FAIL",
                  r.points.size(), failed, r.seconds,
                  r.artifacts.empty() ? "" : "; artifacts: ", r.artifacts.c_str());
    progress(s.name, b);
    for (const auto& p : r.points)
        if (!p.ok())
            progress(s.name, "  not ok: " + p.name + " — " + p.diag.substr(0, p.diag.find('\n')));
    return r;
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse_args(argc, argv);
    if (o.print_accel) {
        if (!fs::exists(o.qemu)) {
            std::fprintf(stderr, "icemu-run: --print-accel: no QEMU at %s (--qemu)\n",
                         o.qemu.c_str());
            return 2;
        }
        std::string why;
        std::printf("%s\n", pick_accel(o.qemu, o.kernel, why).c_str());
        std::fprintf(stderr, "icemu-run: accelerator: %s\n", why.c_str());
        return 0;
    }
    std::vector<Scenario> scenarios;
    std::vector<std::string> scenario_files; // parallel to scenarios
    try {
        if (o.scenarios.empty()) {
            for (const auto& f : default_scenarios()) {
                Scenario s = load_scenario(f);
                if (s.in_default) {
                    scenarios.push_back(s);
                    scenario_files.push_back(f);
                }
            }
        } else {
            for (const auto& s : o.scenarios) {
                scenario_files.push_back(resolve_scenario(s));
                scenarios.push_back(load_scenario(scenario_files.back()));
            }
        }
    } catch (const ScenarioError& e) {
        std::fprintf(stderr, "icemu-run: %s\n", e.what());
        return 2;
    }
    if (o.list) {
        for (const auto& s : scenarios)
            std::printf("%-28s %s\n", s.name.c_str(), s.title.c_str());
        return 0;
    }
    if (scenarios.empty()) {
        std::fprintf(stderr, "icemu-run: no scenarios\n");
        return 2;
    }
    if (!check_inputs(o))
        return 2;
    o.qemu = fs::absolute(o.qemu).string();
    o.kernel = fs::absolute(o.kernel).string();
    o.initrd = fs::absolute(o.initrd).string();

    if (o.accel == "auto") {
        std::string why;
        o.accel = pick_accel(o.qemu, o.kernel, why);
        std::fprintf(stderr, "icemu-run: accelerator: %s\n", why.c_str());
    }
    EngineOptions eng;
    eng.force_off = o.crypto_off;
    eng.pci_identity = o.identity;
    std::string help = capture({o.qemu, "-device", "ufs,help"}, 20);
    eng.props_supported = help.find("crypto=") != std::string::npos;
    eng.wrapped_supported = help.find("crypto-wrapped-keys=") != std::string::npos;
    eng.emmc_wrapped_supported =
        capture({o.qemu, "-device", "sdhci-pci,help"}, 20).find("crypto-wrapped-keys=") !=
        std::string::npos;
    if (!eng.props_supported)
        std::fprintf(stderr,
                     "icemu-run: %s has no UFS crypto engine (no 'crypto' property); "
                     "controllers run without crypto and crypto expectations will fail\n",
                     o.qemu.c_str());

    bool own_artifacts = o.artifacts.empty();
    std::string base = o.artifacts;
    if (own_artifacts) {
        char tmpl[] = "/tmp/icemu-run-XXXXXX";
        if (!mkdtemp(tmpl)) {
            std::perror("mkdtemp");
            return 2;
        }
        base = tmpl;
    }
    fs::create_directories(base);
    base = fs::absolute(base).string();

    double t0 = now_s();
    std::vector<ScenarioResult> results(scenarios.size());
    std::vector<std::string> stops(scenarios.size()); // preflight failures
    // One artifact directory per scenario run: BASE/<name>, BASE/<name>.2 for the second run of
    // the same scenario (side by side, two runs must not share sockets and images).
    std::vector<std::string> dirs;
    std::map<std::string, int> runs_of;
    for (const auto& s : scenarios) {
        const int k = ++runs_of[s.name];
        dirs.push_back(base + "/" + s.name + (k > 1 ? "." + std::to_string(k) : ""));
    }
    auto one = [&](std::size_t si) {
        results[si] = run_one(scenarios[si], scenario_files[si], o, eng, dirs[si], stops[si]);
    };
    {
        // Start scenarios in order while their vCPUs fit the budget (--jobs 1: one after
        // another); a scenario larger than the whole budget waits until it can run alone. A
        // preflight failure (no KVM, a missing file...) starts nothing more.
        std::mutex mu;
        std::condition_variable cv;
        unsigned busy = 0;
        bool stop = false;
        std::vector<std::thread> threads;
        for (std::size_t si = 0; si < scenarios.size(); ++si) {
            const unsigned need = std::min(std::max(scenarios[si].smp, 1u), o.jobs);
            std::unique_lock<std::mutex> lk(mu);
            cv.wait(lk, [&] { return stop || busy + need <= o.jobs; });
            if (stop)
                break;
            busy += need;
            threads.emplace_back([&, si, need] {
                one(si);
                std::lock_guard<std::mutex> g(mu);
                busy -= need;
                stop = stop || !stops[si].empty();
                cv.notify_all();
            });
        }
        for (auto& t : threads)
            t.join();
    }
    for (std::size_t si = 0; si < scenarios.size(); ++si)
        if (!stops[si].empty()) {
            std::fprintf(stderr, "icemu-run: stopping: %s (artifacts: %s)\n", stops[si].c_str(),
                         dirs[si].c_str());
            return 2;
        }
    double secs = now_s() - t0;
    bool all_ok = std::all_of(results.begin(), results.end(), [](const auto& r) { return r.ok(); });
    std::string tap = tap_report(results);
    std::string sum = summary_line(results, secs);
    std::fputs(tap.c_str(), stdout);
    std::printf("# %s\n", sum.c_str());
    std::fflush(stdout);
    if (!o.junit.empty())
        write_file(o.junit, junit_report(results));
    if (own_artifacts && all_ok && !o.keep)
        fs::remove_all(base);
    std::fprintf(stderr, "%s%s\n", sum.c_str(),
                 all_ok && !o.keep ? "" : ("; artifacts: " + base).c_str());
    return all_ok ? 0 : 1;
}
