// A QEMU process driven through the qtest protocol (qtest accel, no guest code) plus a QMP
// monitor. Invariants: every read has a deadline, a dead QEMU is reported with its exit status
// and the tail of its stderr, and the destructor always reaps the process and removes its
// temporary directory.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace icemu::qtest {

// Any protocol or process failure.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// QEMU exited (or was killed) while the client was waiting for it.
class QemuDied : public Error {
public:
    QemuDied(const std::string& what, int wait_status) : Error(what), wait_status_(wait_status) {}
    int wait_status() const { return wait_status_; }

private:
    int wait_status_;
};

// QMP answered with {"error": ...}.
class QmpError : public Error {
public:
    QmpError(const std::string& what, std::string error_class)
        : Error(what), error_class_(std::move(error_class)) {}
    const std::string& error_class() const { return error_class_; }

private:
    std::string error_class_;
};

// A directory under $TMPDIR (or /tmp) removed with its contents on destruction.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "icemu");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

// Buffered line reader over a file descriptor with a per-call deadline.
class LineChannel {
public:
    LineChannel() = default;
    explicit LineChannel(int fd) : fd_(fd) {}
    LineChannel(const LineChannel&) = delete;
    LineChannel& operator=(const LineChannel&) = delete;
    LineChannel(LineChannel&& other) noexcept;
    LineChannel& operator=(LineChannel&& other) noexcept;
    ~LineChannel();

    // Returns false on timeout, throws Error on EOF or I/O error.
    bool read_line(std::string& line, std::chrono::milliseconds timeout);
    void write_all(std::string_view data);
    bool valid() const { return fd_ >= 0; }

private:
    int fd_ = -1;
    std::string buf_;
    std::size_t scanned_ = 0; // bytes of buf_ known to hold no newline
};

struct MachineOptions {
    std::string qemu_binary;
    std::string machine = "q35";
    std::vector<std::string> extra_args; // devices, drives, chardevs
    std::chrono::milliseconds timeout{30000};
};

class Machine {
public:
    explicit Machine(MachineOptions options);
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // ---- qtest: MMIO, port I/O, guest memory, virtual clock ----
    std::uint8_t readb(std::uint64_t addr);
    std::uint16_t readw(std::uint64_t addr);
    std::uint32_t readl(std::uint64_t addr);
    std::uint64_t readq(std::uint64_t addr);
    void writeb(std::uint64_t addr, std::uint8_t value);
    void writew(std::uint64_t addr, std::uint16_t value);
    void writel(std::uint64_t addr, std::uint32_t value);
    void writeq(std::uint64_t addr, std::uint64_t value);
    std::uint16_t inw(std::uint16_t port);
    void outw(std::uint16_t port, std::uint16_t value);
    std::uint32_t inl(std::uint16_t port);
    void outl(std::uint16_t port, std::uint32_t value);
    std::vector<std::uint8_t> memread(std::uint64_t addr, std::size_t size);
    void memwrite(std::uint64_t addr, std::span<const std::uint8_t> data);
    void memset(std::uint64_t addr, std::size_t size, std::uint8_t value);
    // Advances the virtual clock by ns (0: to the next deadline); returns the new time.
    std::uint64_t clock_step(std::uint64_t ns = 0);

    // ---- QMP ----
    nlohmann::json qmp(const std::string& command, nlohmann::json arguments = nullptr);
    nlohmann::json qom_get(const std::string& path, const std::string& property);
    void qom_set(const std::string& path, const std::string& property, nlohmann::json value);

    // ---- process ----
    // True while the QEMU process has not exited.
    bool alive();
    // Waits (bounded) for QEMU to exit by itself; returns the wait status or -1 on timeout.
    int wait_exit(std::chrono::milliseconds timeout);
    // Terminates QEMU (SIGTERM, then SIGKILL) and reaps it. Idempotent.
    void shutdown();
    std::string stderr_text() const;
    // The QEMU process (e.g. to inspect its memory through /proc/PID/mem).
    pid_t pid() const { return pid_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    const MachineOptions& options() const { return options_; }

    // Sends one raw qtest command line; returns the words after "OK".
    std::string command(const std::string& line);

private:
    [[noreturn]] void died(const std::string& context);
    std::string read_reply(LineChannel& ch, const char* what);

    MachineOptions options_;
    TempDir dir_;
    pid_t pid_ = -1;
    int wait_status_ = 0;
    bool reaped_ = false;
    LineChannel qtest_;
    LineChannel qmp_;
};

// "signal 11 (Segmentation fault)" / "exit status 1".
std::string describe_wait_status(int status);

} // namespace icemu::qtest
