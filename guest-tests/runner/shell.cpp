// icemu-shell: boots the Debian root filesystem with the controllers of a named machine (or
// of a scenario) and gives an interactive console, or runs one command and exits with its
// status. Afterwards it says where the event logs, the QMP socket and the images are, and
// prints icemu-check's device-only summary of what the hardware saw. Usage: docs/shell.md.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "cmdline.hpp"
#include "defaults.hpp"
#include "machine.hpp"
#include "scenario.hpp"

namespace fs = std::filesystem;
using namespace icemu::runner;

namespace {

struct Options {
    std::string machine = "ufs", scenario, qemu, kernel, initrd, rootfs, dir, checker;
    std::string accel = "auto", memory, identity;
    std::vector<std::string> command;                        // after --
    std::vector<std::pair<std::string, std::string>> shares; // --share TAG=DIR[:ro]
    double timeout = 0;                                      // 0: none
    bool quiet = false;
};

[[noreturn]] void usage(int code) {
    std::fprintf(
        code ? stderr : stdout,
        "usage: icemu-shell [--machine NAME|FILE | --scenario NAME|FILE] [--kernel BZIMAGE]\n"
        "                   [--qemu QEMU] [--rootfs IMAGE] [--initrd CPIO] [--dir DIR]\n"
        "                   [--accel auto|kvm|tcg] [--memory SIZE] [--timeout SECONDS]\n"
        "                   [--pci-identity qemu|intel-mtl] [--checker ICEMU_CHECK | --no-check]\n"
        "                   [--share TAG=DIR[,ro]]... [--quiet] [-- CMD [ARG...]]\n"
        "Boots icemu's Debian root filesystem on the machine's emulated controllers. Without\n"
        "CMD: an interactive shell (exit or Ctrl-D powers off; Ctrl-A x kills QEMU, Ctrl-A c\n"
        "is QEMU's monitor). With CMD: runs it in the guest (bash -c), prints its output and\n"
        "exits with its status (126: not run, a crypto=on disk has no queue/crypto; 124: it\n"
        "succeeded but an icemu-check verdict failed; 125: the guest reported no status).\n"
        "--share TAG=DIR exports DIR over 9p (mount -t 9p -o trans=virtio TAG /mnt in the\n"
        "guest; ',ro' read-only). A guest program may write {\"mark\": TEXT} lines on the\n"
        "virtio port org.icemu.0: each is answered \"ok\" once the event logs' sizes at that\n"
        "moment are appended to DIR/marks.jsonl (test boundaries for ./icemu fstests).\n"
        "Machines (%s): ufs, two-ufs, ufs-emmc, ufs-mcq, ufs-wrapped,\n"
        "emmc-wrapped.\n",
        ICEMU_MACHINE_DIR);
    std::exit(code);
}

[[noreturn]] void fail(const std::string& msg) {
    std::fprintf(stderr, "icemu-shell: %s\n", msg.c_str());
    std::exit(2);
}

std::string env_or(const char* name, const std::string& dflt) {
    const char* v = std::getenv(name);
    return v && *v ? v : dflt;
}

double parse_seconds(const std::string& flag, const std::string& v) {
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || errno || d < 0)
        fail(flag + " wants a number of seconds, got '" + v + "'");
    return d;
}

Options parse_args(int argc, char** argv) {
    Options o;
    o.qemu = env_or("ICEMU_QEMU", ICEMU_DEFAULT_QEMU);
    o.kernel = env_or("ICEMU_KERNEL", ICEMU_DEFAULT_KERNEL);
    o.initrd = env_or("ICEMU_INITRD", ICEMU_DEFAULT_INITRD);
    o.rootfs = env_or("ICEMU_ROOTFS", "");
    o.checker = env_or("ICEMU_CHECK", ICEMU_DEFAULT_CHECKER);
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc)
                fail(a + " needs a value (icemu-shell --help)");
            return argv[++i];
        };
        if (a == "--") {
            for (++i; i < argc; ++i)
                o.command.push_back(argv[i]);
            if (o.command.empty())
                fail("nothing after --");
        } else if (a == "--machine" || a == "-m") {
            o.machine = val();
        } else if (a == "--scenario" || a == "-s") {
            o.scenario = val();
        } else if (a == "--qemu") {
            o.qemu = val();
        } else if (a == "--kernel") {
            o.kernel = val();
        } else if (a == "--initrd") {
            o.initrd = val();
        } else if (a == "--rootfs") {
            o.rootfs = val();
        } else if (a == "--dir") {
            o.dir = val();
        } else if (a == "--memory") {
            o.memory = val();
        } else if (a == "--accel") {
            o.accel = val();
            if (o.accel != "auto" && o.accel != "kvm" && o.accel != "tcg")
                fail("--accel must be auto, kvm or tcg, not '" + o.accel + "'");
        } else if (a == "--pci-identity") {
            o.identity = val();
            if (o.identity != "qemu" && o.identity != "intel-mtl")
                fail("--pci-identity must be qemu or intel-mtl, not '" + o.identity + "'");
        } else if (a == "--timeout") {
            o.timeout = parse_seconds(a, val());
        } else if (a == "--share") {
            std::string v = val();
            auto eq = v.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
                fail("--share wants TAG=DIR[,ro], got '" + v + "'");
            o.shares.emplace_back(v.substr(0, eq), v.substr(eq + 1));
        } else if (a == "--checker") {
            o.checker = val();
        } else if (a == "--no-check") {
            o.checker.clear();
        } else if (a == "--quiet" || a == "-q") {
            o.quiet = true;
        } else if (a == "--help" || a == "-h") {
            usage(0);
        } else {
            fail("unknown argument '" + a + "' (icemu-shell --help)");
        }
    }
    return o;
}

// A machine file holds the machine part of a scenario (name, title, machine, controllers,
// virtio): it is loaded with the scenario parser, so both formats stay one.
Scenario load_machine(const std::string& arg) {
    std::string path = arg;
    if (!fs::exists(path))
        path = std::string(ICEMU_MACHINE_DIR) + "/" + arg + ".json";
    if (!fs::exists(path)) {
        std::string names;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(ICEMU_MACHINE_DIR, ec))
            if (e.path().extension() == ".json")
                names += " " + e.path().stem().string();
        fail("no machine file or name '" + arg + "' (machines:" + names + ")");
    }
    json j;
    try {
        std::ifstream in(path);
        j = json::parse(in);
    } catch (const std::exception& e) {
        fail(path + ": " + e.what());
    }
    static const char* allowed[] = {"name",        "title",        "description", "machine",
                                    "controllers", "virtio_disks", "append"};
    if (!j.is_object())
        fail(path + ": a machine is a JSON object");
    for (const auto& [k, v] : j.items()) {
        bool ok = false;
        for (const char* a : allowed)
            ok = ok || k == a;
        if (!ok)
            fail(path + ": unknown key '" + k + "' in a machine file");
    }
    j["steps"] = json::array({{{"op", "sysinfo"}}}); // never run: the parser wants one
    j["default"] = false;
    try {
        return parse_scenario(j);
    } catch (const ScenarioError& e) {
        fail(path + ": " + e.what());
    }
}

Scenario load_from_scenario(const std::string& arg) {
    std::string path = arg;
    if (!fs::exists(path))
        path = std::string(ICEMU_SCENARIO_DIR) + "/" + arg + ".json";
    try {
        return load_scenario(path);
    } catch (const ScenarioError& e) {
        fail(e.what());
    }
}

void make_image(const std::string& path, std::uint64_t size) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) < 0)
        fail("create image " + path + ": " + std::strerror(errno));
    ::close(fd);
}

// Base64 for the kernel command line (the guest decodes it with coreutils' base64 -d).
std::string base64(const std::string& in) {
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v =
            (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
    }
    if (i + 1 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
    } else if (i + 2 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
    }
    return out;
}

// The command as bash -c text: one argument is taken as a script ("a && b"), several are
// quoted word by word.
std::string command_text(const std::vector<std::string>& cmd) {
    return cmd.size() == 1 ? cmd[0] : shell_join(cmd);
}

} // namespace

int main(int argc, char** argv) {
    Options o = parse_args(argc, argv);
    Scenario s = o.scenario.empty() ? load_machine(o.machine) : load_from_scenario(o.scenario);
    if (!o.memory.empty())
        s.memory = o.memory;
    for (auto [what, path] : {std::pair{"--qemu", &o.qemu},
                              {"--kernel", &o.kernel},
                              {"--initrd", &o.initrd},
                              {"--rootfs", &o.rootfs}}) {
        if (path->empty() || !fs::exists(*path))
            fail(std::string(what) + ": not found: '" + *path + "'");
        *path = fs::absolute(*path).string();
    }

    bool own_dir = o.dir.empty();
    if (own_dir) {
        char tmpl[] = "/tmp/icemu-shell-XXXXXX";
        if (!mkdtemp(tmpl))
            fail(std::string("mkdtemp: ") + std::strerror(errno));
        o.dir = tmpl;
    }
    fs::create_directories(o.dir);
    o.dir = fs::absolute(o.dir).string();

    std::string why;
    if (o.accel == "auto")
        o.accel = pick_accel(o.qemu, o.kernel, why);
    else
        why = o.accel == "kvm" ? "KVM (asked for)" : "TCG (asked for)";

    MachinePaths paths{o.qemu, o.kernel, o.initrd, o.dir, o.accel, ""};
    EngineOptions eng;
    std::string help = capture({o.qemu, "-device", "ufs,help"}, 20);
    eng.props_supported = help.find("crypto=") != std::string::npos;
    if (!eng.props_supported)
        fail(o.qemu + " has no UFS crypto engine (no 'crypto' property in -device ufs,help)");

    for (const auto& c : s.controllers)
        for (const auto& lu : c.lus)
            if (!fs::exists(lu_image(paths, c, lu)))
                make_image(lu_image(paths, c, lu), lu.size);
    for (const auto& d : s.virtio_disks)
        if (!fs::exists(virtio_image(paths, d)))
            make_image(virtio_image(paths, d), d.size);

    bool interactive = o.command.empty();
    paths.extra_append = "icemu.root=/dev/vda icemu.disks=" + disk_locations(s);
    std::string crypto_disks;
    for (const auto& c : s.controllers)
        for (const auto& lu : c.lus)
            if (c.crypto)
                crypto_disks += (crypto_disks.empty() ? "" : ",") + lu.name;
    if (!crypto_disks.empty())
        paths.extra_append += " icemu.crypto=" + crypto_disks;
    if (!interactive) {
        std::string b64 = base64(command_text(o.command));
        if (b64.size() > 1500)
            fail("the command is too long for the kernel command line (" +
                 std::to_string(b64.size()) +
                 " bytes as base64, limit 1500): put it in a script on a disk image");
        paths.extra_append += " icemu.cmd=" + b64;
    }
    eng.pci_identity = o.identity;
    std::vector<std::string> qargv = qemu_argv(s, paths, eng);
    auto add = [&](std::initializer_list<std::string> xs) { qargv.insert(qargv.end(), xs); };
    // The root filesystem: read-only image, writes go to a tmpfs overlay in the guest.
    add({"-drive", "if=none,id=rootfs,file=" + o.rootfs + ",format=raw,readonly=on", "-device",
         "virtio-blk-pci,drive=rootfs,addr=0x0b"});
    // The user's console: a virtconsole (hvc0) on QEMU's stdio; the kernel's goes to
    // console.log (ttyS0).
    if (interactive) {
        add({"-chardev", "stdio,id=hvc,mux=on,signal=off", "-mon", "chardev=hvc"});
    } else {
        add({"-chardev", "stdio,id=hvc,signal=on"});
    }
    add({"-device", "virtconsole,bus=vser.0,chardev=hvc"});
    for (const auto& [tag, spec] : o.shares) {
        std::string dir = spec;
        bool ro = dir.size() > 3 && dir.compare(dir.size() - 3, 3, ",ro") == 0;
        if (ro)
            dir.resize(dir.size() - 3);
        if (!fs::is_directory(dir))
            fail("--share " + tag + ": no such directory '" + dir + "'");
        add({"-virtfs", "local,path=" + fs::absolute(dir).string() + ",mount_tag=" + tag +
                            ",security_model=none,id=" + tag + (ro ? ",readonly=on" : "")});
    }
    std::string user_qmp = o.dir + "/qmp-user.sock";
    add({"-qmp", "unix:" + user_qmp + ",server=on,wait=off"});
    { std::ofstream(o.dir + "/qemu-cmdline.sh") << "#!/bin/sh\n" << shell_join(qargv) << "\n"; }

    if (!o.quiet)
        std::fprintf(stderr,
                     "icemu-shell: machine %s (%s); accelerator: %s\n"
                     "icemu-shell: artifacts in %s (QMP for you: %s)\n",
                     s.name.c_str(), s.title.c_str(), why.c_str(), o.dir.c_str(), user_qmp.c_str());

    UnixListener qmp_l(qmp_socket(paths)), guest_l(guest_socket(paths));
    QemuProcess qemu;
    double t0 = now_s();
    qemu.start(qargv, o.dir + "/qemu.log", /*attach_stdio=*/true);
    int qfd = qmp_l.accept_until(t0 + 30);
    int gfd = qfd >= 0 ? guest_l.accept_until(t0 + 30) : -1;
    if (qfd < 0 || gfd < 0) {
        qemu.kill_now();
        fail("QEMU did not start; qemu.log:\n" + tail(o.dir + "/qemu.log", 20));
    }
    Qmp qmp;
    qmp.attach(qfd);
    std::string err;
    if (!qmp.handshake(now_s() + 10, err)) {
        qemu.kill_now();
        fail("QMP: " + err);
    }
    LineChannel guest(gfd);
    int rc = -1;
    unsigned mounted = 1;
    double deadline = o.timeout > 0 ? t0 + o.timeout : 1e300;
    std::string line;
    while (qemu.running()) {
        if (now_s() > deadline) {
            std::fprintf(stderr, "icemu-shell: timeout after %.0fs; killing QEMU\n", o.timeout);
            qemu.kill_now();
            break;
        }
        if (!guest.read_line(line, std::min(deadline, now_s() + 0.5))) {
            if (guest.eof())
                break;
            continue;
        }
        json m = json::parse(line, nullptr, false);
        if (m.is_object() && m.contains("mark") && m["mark"].is_string()) {
            // A test boundary: every I/O the guest issued before it has been logged.
            json rec = {{"mark", m["mark"]}, {"t", now_s() - t0}, {"logs", json::object()}};
            for (const auto& c : s.controllers) {
                std::error_code ec;
                auto size = fs::file_size(event_log_path(paths, c), ec);
                rec["logs"][c.id] = ec ? 0 : size;
            }
            std::ofstream(o.dir + "/marks.jsonl", std::ios::app) << rec.dump() << "\n";
            guest.write_line("ok");
            continue;
        }
        if (!m.is_object() || !m.contains("shell_exit"))
            continue;
        rc = m["shell_exit"].get<int>();
        mounted = m.value("mounted", 1u);
        // The state at the moment the command ended, before the guest powers off.
        fs::create_directories(o.dir + "/at-exit");
        for (const auto& c : s.controllers) {
            std::error_code ec;
            fs::copy_file(event_log_path(paths, c), o.dir + "/at-exit/" + c.id + ".events.jsonl",
                          fs::copy_options::overwrite_existing, ec);
            json st = qmp.execute(
                "qom-get", {{"path", "/machine/peripheral/" + c.id}, {"property", "crypto-state"}},
                10);
            std::ofstream(o.dir + "/at-exit/" + c.id + ".state.json")
                << (st.is_object() && st.contains("return") ? st["return"] : st).dump(1) << "\n";
        }
        guest.write_line("ok");
        break;
    }
    if (qemu.wait_until(now_s() + 20) < 0) {
        qemu.kill_now();
        qemu.wait_until(now_s() + 5);
    }
    double secs = now_s() - t0;
    int qstatus = qemu.status();
    if (rc < 0) {
        std::fprintf(stderr,
                     "icemu-shell: the guest did not report an exit status (QEMU exit %d); "
                     "console tail:\n%s",
                     qstatus, tail(o.dir + "/console.log", 15).c_str());
        std::string ql = tail(o.dir + "/qemu.log", 10);
        if (!ql.empty())
            std::fprintf(stderr, "qemu.log:\n%s", ql.c_str());
    }

    int check_rc = 0;
    if (!o.checker.empty()) {
        std::vector<std::string> cargv = {o.checker, "--device-only", "--json",
                                          o.dir + "/check.json"};
        if (rc >= 0 && mounted == 0)
            cargv.push_back("--expect-evicted");
        bool any = false;
        for (const auto& c : s.controllers) {
            std::string at = o.dir + "/at-exit/" + c.id + ".events.jsonl";
            std::string log = fs::exists(at) ? at : event_log_path(paths, c);
            if (fs::exists(log) && fs::file_size(log) > 0) {
                cargv.push_back("--log");
                cargv.push_back(c.id + "=" + log);
                any = true;
            }
        }
        if (any) {
            std::string text = capture(cargv, 120);
            std::ofstream(o.dir + "/check.txt") << text;
            if (!o.quiet)
                std::fputs(text.c_str(), stderr);
            json v = json::parse(read_file(o.dir + "/check.json"), nullptr, false);
            if (!v.is_object()) {
                check_rc = 1;
                std::fprintf(stderr, "icemu-shell: icemu-check gave no verdicts: %s\n",
                             text.c_str());
            }
            for (const auto& x : v.is_object() ? v.value("verdicts", json::array()) : json())
                check_rc |= x.value("status", "") == "fail";
        }
    }
    if (!o.quiet) {
        std::fprintf(stderr, "icemu-shell: %.1fs; event logs:", secs);
        for (const auto& c : s.controllers)
            std::fprintf(stderr, " %s", event_log_path(paths, c).c_str());
        std::fprintf(stderr,
                     "\nicemu-shell: images and console.log in %s; QEMU command line in "
                     "%s/qemu-cmdline.sh\n",
                     o.dir.c_str(), o.dir.c_str());
    }
    if (rc == 126)
        std::fprintf(stderr, "icemu-shell: the command did not run: a crypto=on disk has no "
                             "queue/crypto in the guest (the line above says why)\n");
    if (rc < 0)
        return 125;
    if (check_rc && rc == 0) {
        std::fprintf(stderr, "icemu-shell: the command succeeded but icemu-check found a "
                             "failure (above)\n");
        return 124;
    }
    return rc;
}
