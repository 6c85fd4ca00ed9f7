// Small helpers for the in-guest program: errors that carry errno, file and hex utilities,
// and the /dev/kmsg reader. Every op reports failures by throwing OpError.
#pragma once
#include <cstdint>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace icemu::guest {

using nlohmann::json;

// A failed operation: errno (0 if not a syscall failure) and a human message.
struct OpError : std::runtime_error {
    int err;
    OpError(int e, const std::string& what) : std::runtime_error(what), err(e) {}
};

// Throws OpError(errno, "<what>: <strerror>") for the current errno.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_error(const std::string& what); // errno 0

std::string errno_name(int e); // "EINVAL", or the number as text if unknown

std::optional<std::string> read_text(const std::string& path); // whole file, nullopt if absent
std::string trim(std::string s);
void write_text(const std::string& path, const std::string& text); // throws
void mkdir_p(const std::string& path);                             // throws

std::string to_hex(const std::uint8_t* p, std::size_t n);
std::vector<std::uint8_t> from_hex(const std::string& hex); // throws on bad input

// Typed argument access with clear error messages.
std::string arg_str(const json& req, const char* key);
std::string arg_str(const json& req, const char* key, const std::string& dflt);
std::uint64_t arg_u64(const json& req, const char* key);
std::uint64_t arg_u64(const json& req, const char* key, std::uint64_t dflt);
bool arg_bool(const json& req, const char* key, bool dflt);

double clock_s(clockid_t clock); // seconds on `clock`
double uptime_s();               // CLOCK_BOOTTIME (counts suspended time)

// An open file descriptor that closes itself. Opening adds O_CLOEXEC and throws
// OpError(errno, "open <path>: ...") on failure.
class Fd {
public:
    Fd(const std::string& path, int flags, unsigned mode = 0644);
    ~Fd();
    Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    Fd& operator=(Fd&&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

// Key bytes that are wiped when the buffer goes (keys, wrapped-key blobs, software secrets).
struct SecretBuf {
    std::vector<std::uint8_t> b;
    SecretBuf() = default;
    explicit SecretBuf(std::size_t n) : b(n) {}
    ~SecretBuf() { wipe(); }
    SecretBuf(SecretBuf&& o) noexcept : b(std::move(o.b)) {}
    SecretBuf(const SecretBuf&) = delete;
    SecretBuf& operator=(const SecretBuf&) = delete;
    SecretBuf& operator=(SecretBuf&&) = delete;
    std::uint8_t* data() { return b.data(); }
    const std::uint8_t* data() const { return b.data(); }
    std::size_t size() const { return b.size(); }
    void wipe();
};

// A 4096-byte aligned heap buffer, as O_DIRECT I/O needs.
class AlignedBuf {
public:
    explicit AlignedBuf(std::size_t n); // throws OpError(ENOMEM)
    ~AlignedBuf();
    AlignedBuf(const AlignedBuf&) = delete;
    AlignedBuf& operator=(const AlignedBuf&) = delete;
    std::uint8_t* data() const { return p_; }

private:
    std::uint8_t* p_ = nullptr;
};

// Reads /dev/kmsg records that appeared since the last call (non-blocking).
class Kmsg {
public:
    void open();
    // New lines as "[   1.234567] text". Continuation lines are folded into the record.
    std::vector<std::string> drain();

private:
    int fd_ = -1;
};

} // namespace icemu::guest
