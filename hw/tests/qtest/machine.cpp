#include "machine.hpp"

#include "base64.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace icemu::qtest {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

std::string hex(std::uint64_t v) {
    std::ostringstream os;
    os << "0x" << std::hex << v;
    return os.str();
}

std::uint64_t parse_u64(const std::string& s) {
    std::size_t pos = 0;
    const std::uint64_t v = std::stoull(s, &pos, 0);
    if (pos != s.size()) {
        throw Error("qtest: cannot parse number '" + s + "'");
    }
    return v;
}

int listen_unix(const std::filesystem::path& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw Error(errno_text("socket"));
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path.string();
    if (p.size() >= sizeof(addr.sun_path)) {
        ::close(fd);
        throw Error("socket path too long: " + p);
    }
    std::memcpy(addr.sun_path, p.c_str(), p.size() + 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 1) != 0) {
        const std::string msg = errno_text("bind/listen");
        ::close(fd);
        throw Error(msg);
    }
    return fd;
}

} // namespace

std::string describe_wait_status(int status) {
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + ")";
    }
    if (WIFEXITED(status)) {
        return "exit status " + std::to_string(WEXITSTATUS(status));
    }
    return "wait status " + std::to_string(status);
}

// ---------------------------------------------------------------- TempDir

TempDir::TempDir(std::string_view prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base && *base ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    // Unix socket paths must stay short: fall back to /tmp when TMPDIR is long.
    if (tmpl.size() > 60) {
        tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
    }
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
        throw Error(errno_text("mkdtemp"));
    }
    path_ = buf.data();
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

// ---------------------------------------------------------------- LineChannel

LineChannel::LineChannel(LineChannel&& other) noexcept
    : fd_(other.fd_), buf_(std::move(other.buf_)), scanned_(other.scanned_) {
    other.fd_ = -1;
}

LineChannel& LineChannel::operator=(LineChannel&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = other.fd_;
        buf_ = std::move(other.buf_);
        scanned_ = other.scanned_;
        other.fd_ = -1;
    }
    return *this;
}

LineChannel::~LineChannel() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

bool LineChannel::read_line(std::string& line, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto nl = buf_.find('\n', scanned_);
        if (nl != std::string::npos) {
            line.assign(buf_, 0, nl);
            buf_.erase(0, nl + 1);
            scanned_ = 0;
            return true;
        }
        scanned_ = buf_.size();
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        pollfd pfd{fd_, POLLIN, 0};
        const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw Error(errno_text("poll"));
        }
        if (r == 0) {
            return false;
        }
        char chunk[65536];
        const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            throw Error(errno_text("read"));
        }
        if (n == 0) {
            throw Error("connection closed by QEMU");
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
}

void LineChannel::write_all(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw Error(errno_text("send"));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

// ---------------------------------------------------------------- Machine

Machine::Machine(MachineOptions options) : options_(std::move(options)), dir_("icemu-qt") {
    if (options_.qemu_binary.empty()) {
        throw Error("no QEMU binary given");
    }
    const auto qtest_sock = dir_ / "qtest.sock";
    const auto qmp_sock = dir_ / "qmp.sock";
    const auto err_path = dir_ / "qemu.stderr";
    const int qtest_listen = listen_unix(qtest_sock);
    const int qmp_listen = listen_unix(qmp_sock);

    std::vector<std::string> args = {options_.qemu_binary,
                                     "-qtest",
                                     "unix:" + qtest_sock.string(),
                                     "-qtest-log",
                                     "/dev/null",
                                     "-chardev",
                                     "socket,path=" + qmp_sock.string() + ",id=icemu-qmp",
                                     "-mon",
                                     "chardev=icemu-qmp,mode=control",
                                     "-accel",
                                     "qtest",
                                     "-nodefaults",
                                     "-display",
                                     "none",
                                     "-M",
                                     options_.machine};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(qtest_listen);
        ::close(qmp_listen);
        throw Error(errno_text("fork"));
    }
    if (pid == 0) {
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int null = ::open("/dev/null", O_RDWR);
        if (err >= 0) {
            ::dup2(err, 2);
        }
        if (null >= 0) {
            ::dup2(null, 0);
            ::dup2(null, 1);
        }
        ::execv(argv[0], argv.data());
        const std::string msg = std::string("exec ") + argv[0] + ": " + std::strerror(errno) + "\n";
        [[maybe_unused]] const auto n = ::write(2, msg.data(), msg.size());
        ::_exit(127);
    }
    pid_ = pid;

    // Accept both connections (QEMU connects as a client to each).
    const auto deadline = Clock::now() + options_.timeout;
    int fds[2] = {qtest_listen, qmp_listen};
    int accepted[2] = {-1, -1};
    try {
        while (accepted[0] < 0 || accepted[1] < 0) {
            if (!alive()) {
                died("while starting QEMU");
            }
            if (Clock::now() > deadline) {
                throw Error("timeout waiting for QEMU to connect");
            }
            pollfd pfds[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
            const int r = ::poll(pfds, 2, 50);
            if (r < 0 && errno != EINTR) {
                throw Error(errno_text("poll"));
            }
            for (int i = 0; i < 2; ++i) {
                if (accepted[i] < 0 && (pfds[i].revents & POLLIN)) {
                    accepted[i] = ::accept4(fds[i], nullptr, nullptr, SOCK_CLOEXEC);
                }
            }
        }
    } catch (...) {
        ::close(qtest_listen);
        ::close(qmp_listen);
        for (const int fd : accepted) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
        shutdown();
        throw;
    }
    ::close(qtest_listen);
    ::close(qmp_listen);
    qtest_ = LineChannel(accepted[0]);
    qmp_ = LineChannel(accepted[1]);

    try {
        std::string greeting;
        if (!qmp_.read_line(greeting, options_.timeout)) {
            throw Error("timeout waiting for the QMP greeting");
        }
        qmp("qmp_capabilities");
    } catch (const QemuDied&) {
        shutdown();
        throw;
    } catch (const Error& e) {
        const std::string msg = e.what();
        // A QEMU that refused its command line closes the sockets while it exits: give it a
        // moment, so that the error carries its stderr (the reason) rather than "closed".
        if (wait_exit(std::chrono::milliseconds(2000)) != -1) {
            try {
                died("during QMP handshake (" + msg + ")");
            } catch (...) {
                shutdown();
                throw;
            }
        }
        shutdown();
        throw;
    }
}

Machine::~Machine() {
    try {
        shutdown();
    } catch (...) {
        // never throw from a destructor
    }
}

bool Machine::alive() {
    if (reaped_) {
        return false;
    }
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        reaped_ = true;
        wait_status_ = status;
        return false;
    }
    return true;
}

int Machine::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (alive()) {
        if (Clock::now() > deadline) {
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return wait_status_;
}

void Machine::shutdown() {
    if (pid_ <= 0 || reaped_) {
        return;
    }
    if (alive()) {
        ::kill(pid_, SIGTERM);
        if (wait_exit(std::chrono::milliseconds(3000)) < 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            reaped_ = true;
            wait_status_ = status;
        }
    }
}

std::string Machine::stderr_text() const {
    std::ifstream in(dir_ / "qemu.stderr");
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

void Machine::died(const std::string& context) {
    // Give a dying process a moment to be reaped so that its status is known.
    wait_exit(std::chrono::milliseconds(2000));
    std::string err = stderr_text();
    if (err.size() > 2000) {
        err = "..." + err.substr(err.size() - 2000);
    }
    const int status = reaped_ ? wait_status_ : 0;
    throw QemuDied("QEMU died " + context + ": " +
                       (reaped_ ? describe_wait_status(status) : "still running") +
                       (err.empty() ? "" : "\n--- QEMU stderr ---\n" + err),
                   status);
}

std::string Machine::read_reply(LineChannel& ch, const char* what) {
    std::string line;
    bool got = false;
    try {
        got = ch.read_line(line, options_.timeout);
    } catch (const Error& e) {
        died(std::string("waiting for ") + what + " (" + e.what() + ")");
    }
    if (!got) {
        if (!alive()) {
            died(std::string("waiting for ") + what);
        }
        throw Error(std::string("timeout waiting for ") + what);
    }
    return line;
}

std::string Machine::command(const std::string& line) {
    if (reaped_ || !qtest_.valid()) {
        throw Error("qtest: QEMU is not running");
    }
    try {
        qtest_.write_all(line + "\n");
    } catch (const Error& e) {
        died(std::string("sending '") + line.substr(0, 40) + "' (" + e.what() + ")");
    }
    for (;;) {
        const std::string reply = read_reply(qtest_, "a qtest reply");
        if (reply.rfind("IRQ ", 0) == 0) {
            continue; // asynchronous interrupt notification
        }
        if (reply == "OK") {
            return {};
        }
        if (reply.rfind("OK ", 0) == 0) {
            return reply.substr(3);
        }
        throw Error("qtest: '" + line.substr(0, 60) + "' failed: " + reply);
    }
}

std::uint8_t Machine::readb(std::uint64_t addr) {
    return static_cast<std::uint8_t>(parse_u64(command("readb " + hex(addr))));
}
std::uint16_t Machine::readw(std::uint64_t addr) {
    return static_cast<std::uint16_t>(parse_u64(command("readw " + hex(addr))));
}
std::uint32_t Machine::readl(std::uint64_t addr) {
    return static_cast<std::uint32_t>(parse_u64(command("readl " + hex(addr))));
}
std::uint64_t Machine::readq(std::uint64_t addr) {
    return parse_u64(command("readq " + hex(addr)));
}
void Machine::writeb(std::uint64_t addr, std::uint8_t value) {
    command("writeb " + hex(addr) + " " + hex(value));
}
void Machine::writew(std::uint64_t addr, std::uint16_t value) {
    command("writew " + hex(addr) + " " + hex(value));
}
void Machine::writel(std::uint64_t addr, std::uint32_t value) {
    command("writel " + hex(addr) + " " + hex(value));
}
void Machine::writeq(std::uint64_t addr, std::uint64_t value) {
    command("writeq " + hex(addr) + " " + hex(value));
}
std::uint16_t Machine::inw(std::uint16_t port) {
    return static_cast<std::uint16_t>(parse_u64(command("inw " + hex(port))));
}
void Machine::outw(std::uint16_t port, std::uint16_t value) {
    command("outw " + hex(port) + " " + hex(value));
}
std::uint32_t Machine::inl(std::uint16_t port) {
    return static_cast<std::uint32_t>(parse_u64(command("inl " + hex(port))));
}
void Machine::outl(std::uint16_t port, std::uint32_t value) {
    command("outl " + hex(port) + " " + hex(value));
}

std::vector<std::uint8_t> Machine::memread(std::uint64_t addr, std::size_t size) {
    if (size == 0) {
        return {};
    }
    auto data = base64_decode(command("b64read " + hex(addr) + " " + hex(size)));
    if (data.size() != size) {
        throw Error("qtest: b64read returned " + std::to_string(data.size()) + " bytes, wanted " +
                    std::to_string(size));
    }
    return data;
}

void Machine::memwrite(std::uint64_t addr, std::span<const std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    command("b64write " + hex(addr) + " " + hex(data.size()) + " " + base64_encode(data));
}

void Machine::memset(std::uint64_t addr, std::size_t size, std::uint8_t value) {
    command("memset " + hex(addr) + " " + hex(size) + " " + hex(value));
}

std::uint64_t Machine::clock_step(std::uint64_t ns) {
    const std::string r = command(ns ? "clock_step " + std::to_string(ns) : "clock_step");
    return r.empty() ? 0 : parse_u64(r);
}

// ---------------------------------------------------------------- QMP

nlohmann::json Machine::qmp(const std::string& cmd, nlohmann::json arguments) {
    if (reaped_ || !qmp_.valid()) {
        throw Error("qmp: QEMU is not running");
    }
    nlohmann::json req = {{"execute", cmd}};
    if (!arguments.is_null()) {
        req["arguments"] = std::move(arguments);
    }
    try {
        qmp_.write_all(req.dump() + "\n");
    } catch (const Error& e) {
        died("sending QMP " + cmd + " (" + e.what() + ")");
    }
    for (;;) {
        const std::string line = read_reply(qmp_, "a QMP reply");
        nlohmann::json reply;
        try {
            reply = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            throw Error("qmp: unparsable reply '" + line + "': " + e.what());
        }
        if (reply.contains("event")) {
            continue;
        }
        if (reply.contains("return")) {
            return reply["return"];
        }
        if (reply.contains("error")) {
            const auto& err = reply["error"];
            throw QmpError("qmp " + cmd + ": " + err.value("desc", std::string("?")),
                           err.value("class", std::string("?")));
        }
        throw Error("qmp: unexpected reply '" + line + "'");
    }
}

nlohmann::json Machine::qom_get(const std::string& path, const std::string& property) {
    return qmp("qom-get", {{"path", path}, {"property", property}});
}

void Machine::qom_set(const std::string& path, const std::string& property, nlohmann::json value) {
    qmp("qom-set", {{"path", path}, {"property", property}, {"value", std::move(value)}});
}

} // namespace icemu::qtest
