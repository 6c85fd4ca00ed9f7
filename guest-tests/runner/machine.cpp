#include "machine.hpp"

#include "icemu/lines.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <linux/kvm.h>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace icemu::runner {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string tail(const std::string& path, std::size_t lines) {
    std::string t = read_file(path);
    std::size_t pos = t.size(), n = 0;
    while (pos > 0 && n <= lines)
        if (t[--pos] == '\n')
            ++n;
    return t.substr(pos);
}

double now_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

static int ms_until(double deadline) {
    double d = deadline - now_s();
    if (d <= 0)
        return 0;
    return d > 1e6 ? 1000000000 : static_cast<int>(d * 1000) + 1;
}

UnixListener::UnixListener(const std::string& path) : path_(path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path)
        throw std::runtime_error("socket path too long (keep --artifacts short): " + path);
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ::unlink(path.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
        ::listen(fd_, 1) < 0)
        throw std::runtime_error("listen on " + path + ": " + std::strerror(errno));
}

UnixListener::~UnixListener() {
    if (fd_ >= 0)
        ::close(fd_);
    ::unlink(path_.c_str());
}

int UnixListener::accept_until(double deadline) {
    pollfd p{fd_, POLLIN, 0};
    for (;;) {
        int r = ::poll(&p, 1, std::min(ms_until(deadline), 100));
        if (r > 0)
            return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (now_s() >= deadline)
            return -1;
    }
}

LineChannel::~LineChannel() {
    if (fd_ >= 0)
        ::close(fd_);
}

void LineChannel::reset(int fd) {
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = fd;
    buf_.clear();
    eof_ = false;
}

bool LineChannel::read_line(std::string& line, double deadline) {
    for (;;) {
        if (icemu::lines::take(buf_, line))
            return true;
        if (fd_ < 0 || eof_)
            return false;
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, ms_until(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        char tmp[65536];
        ssize_t n = ::read(fd_, tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        buf_.append(tmp, static_cast<std::size_t>(n));
    }
}

bool LineChannel::write_line(const std::string& line) {
    std::string out = line + "\n";
    std::size_t off = 0;
    while (off < out.size()) {
        ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

bool Qmp::handshake(double deadline, std::string& err) {
    std::string line;
    if (!ch_.read_line(line, deadline)) {
        err = "no QMP greeting";
        return false;
    }
    json r = execute("qmp_capabilities", json::object(), deadline - now_s());
    if (!r.is_object() || !r.contains("return")) {
        err = "qmp_capabilities failed: " + r.dump();
        return false;
    }
    return true;
}

json Qmp::execute(const std::string& cmd, const json& args, double timeout_s) {
    json req = {{"execute", cmd}};
    if (!args.empty())
        req["arguments"] = args;
    if (!ch_.write_line(req.dump()))
        return nullptr;
    double deadline = now_s() + timeout_s;
    std::string line;
    while (ch_.read_line(line, deadline)) {
        json r;
        try {
            r = json::parse(line);
        } catch (const json::exception&) {
            continue;
        }
        if (r.contains("return") || r.contains("error"))
            return r;
        // asynchronous events are ignored
    }
    return nullptr;
}

QemuProcess::~QemuProcess() {
    if (running())
        kill_now();
}

namespace {

// A file under /tmp naming this host boot, user, QEMU binary and kernel binary: a KVM probe's
// verdict holds until one of them changes.
std::string probe_cache_path(const std::string& qemu, const std::string& kernel) {
    std::string id;
    std::ifstream boot("/proc/sys/kernel/random/boot_id");
    std::getline(boot, id);
    id += "|" + std::to_string(::getuid());
    for (const auto* f : {&qemu, &kernel}) {
        struct stat st {};
        if (::stat(f->c_str(), &st) == 0)
            id += "|" + *f + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) +
                  "|" + std::to_string(st.st_mtim.tv_sec) + "." +
                  std::to_string(st.st_mtim.tv_nsec);
    }
    std::uint64_t h = 1469598103934665603ull; // FNV-1a
    for (unsigned char c : id)
        h = (h ^ c) * 1099511628211ull;
    char name[64];
    std::snprintf(name, sizeof name, "/tmp/icemu-kvm-probe-%u-%016llx", ::getuid(),
                  static_cast<unsigned long long>(h));
    return name;
}

// Boots `kernel` under KVM as the guests will (-accel kvm -cpu host, q35) with no root file
// system: a KVM that runs guests takes it to the "VFS: Unable to mount root" panic in about a
// second (panic=-1 reboots, -no-reboot ends QEMU). Returns "" when it got there, else why not.
std::string kvm_boot_probe(const std::string& qemu, const std::string& kernel) {
    const std::string out =
        capture({qemu, "-accel", "kvm", "-cpu", "host", "-M", "q35", "-nodefaults", "-display",
                 "none", "-no-reboot", "-m", "256M", "-serial", "stdio", "-kernel", kernel,
                 "-append", "console=ttyS0 panic=-1 loglevel=1"},
                30);
    if (out.find("Kernel panic") != std::string::npos)
        return "";
    std::istringstream lines(out);
    for (std::string l; std::getline(lines, l);) {
        if (l.find("error") != std::string::npos || l.find("failed") != std::string::npos)
            return "QEMU said: " + l;
    }
    return "the kernel printed nothing within 30 s (a KVM that starts QEMU but does not run "
           "its guest, as some nested or paravirtual hosts do)";
}

} // namespace

std::string pick_accel(const std::string& qemu, const std::string& kernel, std::string& why) {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        why = std::string("TCG: /dev/kvm is not usable (") + std::strerror(errno) + ")";
        return "tcg";
    }
    int api = ::ioctl(fd, KVM_GET_API_VERSION, 0);
    ::close(fd);
    if (api != 12) {
        why = "TCG: /dev/kvm answered KVM_GET_API_VERSION with " + std::to_string(api);
        return "tcg";
    }
    // A /dev/kvm that answers can still refuse what QEMU sets up for -cpu host (seen under a
    // nested hypervisor: "failed to set MSR 0x10a", QEMU aborts at start), or start QEMU and
    // never run the guest (seen on a paravirtual KVM host: "kvm-pvm: INTERNAL_ERROR" in the
    // host's log, no byte on the console). So boot the guests' kernel once; the verdict is kept
    // for this host boot and these two binaries.
    if (kernel.empty() || ::access(kernel.c_str(), R_OK) != 0) {
        why =
            "TCG: /dev/kvm is there but no readable guest kernel ('" + kernel + "') to try it with";
        return "tcg";
    }
    const std::string cache = probe_cache_path(qemu, kernel);
    {
        std::ifstream in(cache);
        std::string accel;
        if (std::getline(in, accel) && (accel == "kvm" || accel == "tcg") && std::getline(in, why))
            return accel;
    }
    std::string accel = "kvm";
    if (const std::string no = kvm_boot_probe(qemu, kernel); !no.empty()) {
        why = "TCG: /dev/kvm is there but a guest does not run under it (" + no + ")";
        accel = "tcg";
    } else {
        why = "KVM (/dev/kvm runs the guest kernel)";
    }
    const std::string tmp = cache + "." + std::to_string(::getpid());
    {
        std::ofstream out(tmp);
        out << accel << "\n" << why << " [probe kept in " << cache << "]\n";
    }
    if (::rename(tmp.c_str(), cache.c_str()) != 0)
        ::unlink(tmp.c_str());
    return accel;
}

void QemuProcess::start(const std::vector<std::string>& argv, const std::string& log_path,
                        bool attach_stdio) {
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0)
        throw std::runtime_error("open " + log_path + ": " + std::strerror(errno));
    std::vector<char*> a;
    for (const auto& s : argv)
        a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0)
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
        if (!attach_stdio) {
            ::setpgid(0, 0);
            int devnull = ::open("/dev/null", O_RDONLY);
            ::dup2(devnull, 0);
            ::dup2(log, 1);
        }
        ::dup2(log, 2);
        ::execv(a[0], a.data());
        std::fprintf(stderr, "exec %s: %s\n", a[0], std::strerror(errno));
        _exit(127);
    }
    ::close(log);
}

bool QemuProcess::running() {
    if (pid_ <= 0)
        return false;
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        pid_ = -1;
        return false;
    }
    return true;
}

int QemuProcess::wait_until(double deadline) {
    while (running()) {
        if (now_s() >= deadline)
            return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_;
}

void QemuProcess::kill_now() {
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    status_ = 128 + SIGKILL;
    pid_ = -1;
}

std::string capture(const std::vector<std::string>& argv, double timeout_s) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0)
        return "";
    std::vector<char*> a;
    for (const auto& s : argv)
        a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(p[1], 1);
        ::dup2(p[1], 2);
        ::execv(a[0], a.data());
        _exit(127);
    }
    ::close(p[1]);
    std::string out;
    double deadline = now_s() + timeout_s;
    pollfd pf{p[0], POLLIN, 0};
    while (::poll(&pf, 1, ms_until(deadline)) > 0) {
        char buf[4096];
        ssize_t n = ::read(p[0], buf, sizeof buf);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(p[0]);
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    return out;
}

} // namespace icemu::runner
