#include "util.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace icemu::guest {

void throw_errno(const std::string& what) {
    int e = errno;
    throw OpError(e, what + ": " + std::strerror(e));
}

void throw_error(const std::string& what) {
    throw OpError(0, what);
}

std::string errno_name(int e) {
    static const struct {
        int e;
        const char* n;
    } names[] = {
        {EPERM, "EPERM"},
        {ENOENT, "ENOENT"},
        {EIO, "EIO"},
        {ENXIO, "ENXIO"},
        {EBADF, "EBADF"},
        {EAGAIN, "EAGAIN"},
        {ENOMEM, "ENOMEM"},
        {EACCES, "EACCES"},
        {EFAULT, "EFAULT"},
        {EBUSY, "EBUSY"},
        {EEXIST, "EEXIST"},
        {ENODEV, "ENODEV"},
        {ENOTDIR, "ENOTDIR"},
        {EISDIR, "EISDIR"},
        {EINVAL, "EINVAL"},
        {ENOSPC, "ENOSPC"},
        {EROFS, "EROFS"},
        {ENOTTY, "ENOTTY"},
        {ERANGE, "ERANGE"},
        {ENOKEY, "ENOKEY"},
        {EOPNOTSUPP, "EOPNOTSUPP"},
        {ENOTEMPTY, "ENOTEMPTY"},
        {EKEYREJECTED, "EKEYREJECTED"},
        {ENODATA, "ENODATA"},
        {EOVERFLOW, "EOVERFLOW"},
        {EBADMSG, "EBADMSG"},
        {ETIMEDOUT, "ETIMEDOUT"},
        {ENOPKG, "ENOPKG"},
        {EUCLEAN, "EUCLEAN"},
        {ENOSYS, "ENOSYS"},
    };
    for (const auto& n : names)
        if (n.e == e)
            return n.n;
    return std::to_string(e);
}

std::optional<std::string> read_text(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t'))
        s.pop_back();
    std::size_t i = 0;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
        ++i;
    return s.substr(i);
}

void write_text(const std::string& path, const std::string& text) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        throw_errno("open " + path);
    ssize_t n = ::write(fd, text.data(), text.size());
    int e = errno;
    ::close(fd);
    if (n < 0) {
        errno = e;
        throw_errno("write " + path);
    }
}

void mkdir_p(const std::string& path) {
    for (std::size_t i = 1; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/') {
            std::string p = path.substr(0, i);
            if (::mkdir(p.c_str(), 0755) < 0 && errno != EEXIST)
                throw_errno("mkdir " + p);
        }
    }
}

void SecretBuf::wipe() {
    if (!b.empty())
        explicit_bzero(b.data(), b.size());
}

std::string to_hex(const std::uint8_t* p, std::size_t n) {
    static const char* d = "0123456789abcdef";
    std::string s;
    s.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        s.push_back(d[p[i] >> 4]);
        s.push_back(d[p[i] & 15]);
    }
    return s;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
    if (hex.size() % 2)
        throw OpError(EINVAL, "hex string has odd length");
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            throw OpError(EINVAL, "bad hex digit in '" + hex + "'");
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::string arg_str(const json& req, const char* key) {
    auto it = req.find(key);
    if (it == req.end() || !it->is_string())
        throw OpError(EINVAL, std::string("missing string argument '") + key + "'");
    return it->get<std::string>();
}

std::string arg_str(const json& req, const char* key, const std::string& dflt) {
    auto it = req.find(key);
    if (it == req.end() || it->is_null())
        return dflt;
    if (!it->is_string())
        throw OpError(EINVAL, std::string("argument '") + key + "' must be a string");
    return it->get<std::string>();
}

std::uint64_t arg_u64(const json& req, const char* key) {
    auto it = req.find(key);
    if (it == req.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0)
        throw OpError(EINVAL, std::string("missing unsigned argument '") + key + "'");
    return it->get<std::uint64_t>();
}

std::uint64_t arg_u64(const json& req, const char* key, std::uint64_t dflt) {
    auto it = req.find(key);
    if (it == req.end() || it->is_null())
        return dflt;
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0)
        throw OpError(EINVAL, std::string("argument '") + key + "' must be an unsigned integer");
    return it->get<std::uint64_t>();
}

bool arg_bool(const json& req, const char* key, bool dflt) {
    auto it = req.find(key);
    if (it == req.end() || it->is_null())
        return dflt;
    if (!it->is_boolean())
        throw OpError(EINVAL, std::string("argument '") + key + "' must be a boolean");
    return it->get<bool>();
}

double clock_s(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double uptime_s() {
    return clock_s(CLOCK_BOOTTIME);
}

void Kmsg::open() {
    fd_ = ::open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

std::vector<std::string> Kmsg::drain() {
    std::vector<std::string> lines;
    if (fd_ < 0)
        return lines;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf - 1);
        if (n < 0) {
            if (errno == EPIPE) // records were overwritten; continue with the next one
                continue;
            break; // EAGAIN: nothing new
        }
        if (n == 0)
            break;
        std::string rec(buf, static_cast<std::size_t>(n));
        // "pri,seq,ts_us,flags[,...];message\n[ KEY=value\n]..."
        auto semi = rec.find(';');
        if (semi == std::string::npos)
            continue;
        std::string hdr = rec.substr(0, semi);
        std::string msg = rec.substr(semi + 1);
        auto nl = msg.find('\n');
        if (nl != std::string::npos)
            msg.resize(nl);
        unsigned long long ts_us = 0;
        std::sscanf(hdr.c_str(), "%*u,%*u,%llu", &ts_us);
        char stamp[32];
        std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ", ts_us / 1000000, ts_us % 1000000);
        lines.push_back(stamp + msg);
    }
    return lines;
}

Fd::Fd(const std::string& path, int flags, unsigned mode)
    : fd_(::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode))) {
    if (fd_ < 0)
        throw_errno("open " + path);
}

Fd::~Fd() {
    if (fd_ >= 0)
        ::close(fd_);
}

AlignedBuf::AlignedBuf(std::size_t n) {
    if (::posix_memalign(reinterpret_cast<void**>(&p_), 4096, n) != 0)
        throw OpError(ENOMEM, "posix_memalign");
}

AlignedBuf::~AlignedBuf() {
    std::free(p_);
}

} // namespace icemu::guest
