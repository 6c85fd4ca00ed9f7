// The host side of a running VM: the QEMU process, the unix sockets QEMU connects to (QMP
// and the guest's virtio-serial port), line-oriented JSON channels with deadlines.
#pragma once
#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json.hpp>

namespace icemu::runner {

using nlohmann::json;

double now_s(); // monotonic seconds

// A listening AF_UNIX socket; QEMU connects to it as a client (so no connect race).
class UnixListener {
public:
    explicit UnixListener(const std::string& path);
    ~UnixListener();
    UnixListener(const UnixListener&) = delete;
    UnixListener& operator=(const UnixListener&) = delete;
    int accept_until(double deadline); // fd, or -1 on timeout

private:
    int fd_ = -1;
    std::string path_;
};

class LineChannel {
public:
    LineChannel() = default;
    explicit LineChannel(int fd) : fd_(fd) {}
    ~LineChannel();
    LineChannel(const LineChannel&) = delete;
    LineChannel& operator=(const LineChannel&) = delete;
    void reset(int fd);
    bool valid() const { return fd_ >= 0; }
    // false on timeout or EOF (eof() tells which)
    bool read_line(std::string& line, double deadline);
    bool write_line(const std::string& line);
    bool eof() const { return eof_; }

private:
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
};

class Qmp {
public:
    void attach(int fd) { ch_.reset(fd); }
    bool handshake(double deadline, std::string& err);
    // {"return":...} or {"error":...}; a json null on timeout/EOF.
    json execute(const std::string& cmd, const json& args, double timeout_s);

private:
    LineChannel ch_;
};

// The accelerator icemu's guests use: "kvm" when /dev/kvm can be opened read-write, answers
// KVM_GET_API_VERSION and `qemu` with -accel kvm -cpu host boots `kernel` (to its panic for
// want of a root file system; the verdict is cached per host boot and binaries under /tmp),
// else "tcg". `why` says which and why, for the user.
std::string pick_accel(const std::string& qemu, const std::string& kernel, std::string& why);

class QemuProcess {
public:
    ~QemuProcess();
    // stdout and stderr go to log_path, stdin is /dev/null and QEMU gets its own process
    // group; with attach_stdio (./icemu shell) it keeps the caller's stdin, stdout and
    // process group (for the terminal), and only stderr goes to log_path.
    void start(const std::vector<std::string>& argv, const std::string& log_path,
               bool attach_stdio = false);
    bool running();
    // Waits for exit until deadline; returns the exit status or -1 if still running.
    int wait_until(double deadline);
    void kill_now();
    pid_t pid() const { return pid_; }
    int status() const { return status_; }

private:
    pid_t pid_ = -1;
    int status_ = -1;
};

// A whole file as bytes ("" when it cannot be read) and its last `lines` lines.
std::string read_file(const std::string& path);
std::string tail(const std::string& path, std::size_t lines);

// Runs argv and returns its stdout+stderr (for "qemu -device ufs,help").
std::string capture(const std::vector<std::string>& argv, double timeout_s);

} // namespace icemu::runner
