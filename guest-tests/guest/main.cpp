// icemu-guest: runs inside the VM. As the initramfs' /init (no arguments) it mounts the
// pseudo filesystems, opens the virtio-serial port "org.icemu.0", says hello, then serves one
// JSON request line at a time: {"id":N,"op":"...",args} ->
// {"id":N,"ok":bool,...facts,"kmsg":[...]}. Every reply carries the kernel log lines that appeared
// since the previous reply. As a command (`icemu-guest OP [KEY=VALUE | KEY:=JSON]...`, e.g. in
// ./icemu shell) it runs one op and prints the reply as JSON; the exit status is 0 when the op
// succeeded.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "icemu/guest_ops.hpp"
#include "icemu/lines.hpp"
#include "ops.hpp"

using namespace icemu::guest;
namespace guest_ops = icemu::guest_ops;

namespace {

constexpr const char* kPortName = "org.icemu.0";
constexpr int kProtocolVersion = 1;

Kmsg g_kmsg;
std::vector<std::string> g_kmsg_all; // every line seen, for the kmsg op's summary

void say(const std::string& s) {
    std::fprintf(stderr, "icemu-guest: %s\n", s.c_str());
}

void mount_pseudo() {
    struct M {
        const char *src, *dir, *type;
    } ms[] = {{"proc", "/proc", "proc"},
              {"sysfs", "/sys", "sysfs"},
              {"devtmpfs", "/dev", "devtmpfs"},
              {"debugfs", "/sys/kernel/debug", "debugfs"},
              {"tmpfs", "/tmp", "tmpfs"}};
    for (const auto& m : ms) {
        ::mkdir(m.dir, 0755);
        if (::mount(m.src, m.dir, m.type, 0, nullptr) < 0 && errno != EBUSY)
            say(std::string("mount ") + m.dir + ": " + std::strerror(errno));
    }
}

// /sys/class/virtio-ports/vportNpM/name == org.icemu.0 -> /dev/vportNpM
std::string find_port() {
    for (int tries = 0; tries < 200; ++tries) {
        if (DIR* d = opendir("/sys/class/virtio-ports")) {
            std::string found;
            while (dirent* e = readdir(d)) {
                if (e->d_name[0] == '.')
                    continue;
                std::string n = e->d_name;
                auto name = read_text("/sys/class/virtio-ports/" + n + "/name");
                if (name && trim(*name) == kPortName)
                    found = "/dev/" + n;
            }
            closedir(d);
            if (!found.empty() && access(found.c_str(), F_OK) == 0)
                return found;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
}

json fscrypt_summary() {
    json out = json::array();
    for (const auto& l : g_kmsg_all) {
        auto p = l.find("fscrypt: ");
        if (p == std::string::npos)
            continue;
        auto u = l.find(" using ", p);
        if (u == std::string::npos)
            continue;
        std::string mode = l.substr(p + 9, u - p - 9);
        std::string impl = l.find("(native)", u) != std::string::npos ? "native"
                           : l.find("blk-crypto-fallback", u) != std::string::npos
                               ? "fallback"
                               : l.substr(u + 7);
        out.push_back({{"mode", mode}, {"impl", impl}, {"line", l}});
    }
    return out;
}

json kmsg_op(const json&) {
    return {{"fscrypt", fscrypt_summary()}};
}

json sysinfo_op(const json& req) {
    return op_sysinfo(req);
}

// The handler of each op of the shared vocabulary (guest_ops.hpp). No default: an op added to
// the vocabulary without a handler here is a -Wswitch error. poweroff is answered in handle().
OpFn handler(guest_ops::Op op) {
    using guest_ops::Op;
    switch (op) {
    case Op::sysinfo:
        return sysinfo_op;
    case Op::disks:
        return op_disks;
    case Op::mkfs:
        return op_mkfs;
    case Op::mount:
        return op_mount;
    case Op::umount:
        return op_umount;
    case Op::sync:
        return op_sync;
    case Op::drop_caches:
        return op_drop_caches;
    case Op::suspend:
        return op_suspend;
    case Op::runtime_pm:
        return op_runtime_pm;
    case Op::kmsg:
        return kmsg_op;
    case Op::dm_create:
        return op_dm_create;
    case Op::dm_load:
        return op_dm_load;
    case Op::dm_resume:
        return op_dm_resume;
    case Op::dm_suspend:
        return op_dm_suspend;
    case Op::dm_remove:
        return op_dm_remove;
    case Op::dm_table:
        return op_dm_table;
    case Op::dm_clear:
        return op_dm_clear;
    case Op::dm_message:
        return op_dm_message;
    case Op::add_key:
        return op_add_key;
    case Op::remove_key:
        return op_remove_key;
    case Op::key_status:
        return op_key_status;
    case Op::set_policy:
        return op_set_policy;
    case Op::get_policy:
        return op_get_policy;
    case Op::import_wrapped_key:
        return op_import_wrapped_key;
    case Op::generate_wrapped_key:
        return op_generate_wrapped_key;
    case Op::prepare_wrapped_key:
        return op_prepare_wrapped_key;
    case Op::add_wrapped_key:
        return op_add_wrapped_key;
    case Op::write_file:
        return op_write_file;
    case Op::read_file:
        return op_read_file;
    case Op::file_info:
        return op_file_info;
    case Op::remove_file:
        return op_remove_file;
    case Op::write_files:
        return op_write_files;
    case Op::read_files:
        return op_read_files;
    case Op::write_dev:
        return op_write_dev;
    case Op::read_dev:
        return op_read_dev;
    case Op::bench_io:
        return op_bench_io;
    case Op::poweroff:
        break;
    }
    return nullptr;
}

class Port {
public:
    explicit Port(int fd) : fd_(fd) {}
    bool read_line(std::string& line) {
        for (;;) {
            if (icemu::lines::take(buf_, line))
                return true;
            char tmp[4096];
            ssize_t n = ::read(fd_, tmp, sizeof tmp);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN) { // host not connected yet
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
                continue;
            }
            if (n <= 0) {
                // virtio-serial returns 0 while the host side is disconnected; wait.
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
                if (++eofs_ > 6000)
                    return false;
                continue;
            }
            eofs_ = 0;
            buf_.append(tmp, static_cast<std::size_t>(n));
        }
    }
    void write_line(const std::string& s) {
        std::string out = s + "\n";
        std::size_t off = 0;
        while (off < out.size()) {
            ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                say(std::string("write to port: ") + std::strerror(errno));
                return;
            }
            off += static_cast<std::size_t>(n);
        }
    }

private:
    int fd_;
    std::string buf_;
    int eofs_ = 0;
};

json new_kmsg() {
    auto lines = g_kmsg.drain();
    g_kmsg_all.insert(g_kmsg_all.end(), lines.begin(), lines.end());
    return lines;
}

json handle(const std::string& line, bool& poweroff) {
    json reply = {{"id", nullptr}, {"ok", false}};
    double t0 = uptime_s();
    try {
        json req = json::parse(line);
        reply["id"] = req.value("id", json(nullptr));
        std::string op = req.value("op", "");
        const auto known = guest_ops::parse(op);
        if (known == guest_ops::Op::poweroff) {
            poweroff = true;
            reply["ok"] = true;
        } else {
            const OpFn fn = known ? handler(*known) : nullptr;
            if (!fn)
                throw OpError(ENOSYS, "unknown op '" + op + "'");
            json facts = fn(req);
            for (auto& [k, v] : facts.items())
                reply[k] = v;
            reply["ok"] = true;
        }
    } catch (const OpError& e) {
        reply["ok"] = false;
        reply["errno"] = e.err;
        reply["errno_name"] = e.err ? errno_name(e.err) : "";
        reply["error"] = e.what();
    } catch (const std::exception& e) {
        reply["ok"] = false;
        reply["errno"] = EINVAL;
        reply["errno_name"] = "EINVAL";
        reply["error"] = std::string("bad request: ") + e.what();
    }
    reply["guest_seconds"] = uptime_s() - t0;
    reply["kmsg"] = new_kmsg();
    return reply;
}

void usage(std::FILE* f) {
    std::fprintf(
        f, "usage: icemu-guest OP [KEY=VALUE | KEY:=JSON]...\n"
           "  runs one of the scenario ops and prints its reply as JSON; KEY=VALUE passes a\n"
           "  string, KEY:=JSON any JSON value (numbers, booleans, arrays, objects).\n"
           "  example: icemu-guest add_key mnt=/mnt key=$(head -c64 /dev/urandom | xxd -p -c64)\n"
           "  ops:");
    for (const auto name : guest_ops::kGuestOps)
        if (name != "poweroff")
            std::fprintf(f, " %.*s", static_cast<int>(name.size()), name.data());
    std::fprintf(
        f, "\n  Without arguments (as PID 1) it serves the icemu runner over virtio-serial.\n");
}

int run_cli(int argc, char** argv) {
    std::string op = argv[1];
    if (op == "-h" || op == "--help") {
        usage(stdout);
        return 0;
    }
    if (!guest_ops::parse(op) || op == "poweroff") {
        std::fprintf(stderr, "icemu-guest: unknown op '%s' (icemu-guest --help lists them)\n",
                     op.c_str());
        return 2;
    }
    json req = {{"op", op}};
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::fprintf(stderr, "icemu-guest: argument '%s' is not KEY=VALUE or KEY:=JSON\n",
                         a.c_str());
            return 2;
        }
        if (a[eq - 1] == ':') {
            std::string key = a.substr(0, eq - 1);
            try {
                req[key] = json::parse(a.substr(eq + 1));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "icemu-guest: %s: value is not JSON: %s\n", key.c_str(),
                             e.what());
                return 2;
            }
        } else {
            req[a.substr(0, eq)] = a.substr(eq + 1);
        }
    }
    bool poweroff = false;
    json reply = handle(req.dump(), poweroff);
    reply.erase("kmsg");
    reply.erase("id");
    std::printf("%s\n", reply.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    if (!reply.value("ok", false)) {
        std::fprintf(stderr, "icemu-guest: %s: %s\n", op.c_str(),
                     reply.value("error", std::string("failed")).c_str());
        return 1;
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const char* slash = std::strrchr(argv[0], '/');
    if (std::string_view(slash ? slash + 1 : argv[0]) == "fscryptctl")
        return icemu::guest::fscryptctl_main(argc, argv);
    if (argc > 1)
        return run_cli(argc, argv);
    if (::getpid() != 1) {
        usage(stderr);
        return 2;
    }
    mount_pseudo();
    g_kmsg.open();
    std::string path = find_port();
    if (path.empty()) {
        say("no virtio-serial port named org.icemu.0; powering off");
        ::sync();
        ::reboot(RB_POWER_OFF);
        return 1;
    }
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        say("open " + path + ": " + std::strerror(errno));
        ::reboot(RB_POWER_OFF);
        return 1;
    }
    Port port(fd);
    json hello = op_sysinfo(json::object());
    hello["hello"] = "icemu-guest";
    hello["protocol"] = kProtocolVersion;
    hello["port"] = path;
    hello["kmsg"] = new_kmsg();
    port.write_line(hello.dump(-1, ' ', false, json::error_handler_t::replace));
    std::string line;
    bool poweroff = false;
    while (!poweroff && port.read_line(line)) {
        if (line.empty())
            continue;
        json reply = handle(line, poweroff);
        port.write_line(reply.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    ::sync();
    ::reboot(RB_POWER_OFF);
    return 0;
}
