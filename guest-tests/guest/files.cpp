// Known-pattern file I/O (guest-tests/common/pattern.hpp) and layout facts: inode number,
// the fscrypt nonce, and FIEMAP extents (the physical bytes a file occupies on its device).
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <memory>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/pattern.hpp"
#include "ops.hpp"

namespace icemu::guest {
namespace {

constexpr std::size_t kChunk = 1 << 20;
const unsigned long FS_IOC_GET_NONCE = _IOR('f', 27, std::uint8_t[16]);

std::string dirname_of(const std::string& path) {
    auto s = path.rfind('/');
    return s == std::string::npos || s == 0 ? "/" : path.substr(0, s);
}

} // namespace

// write_file: path, size, seed [, fsync=true, chunk]. Creates/truncates the file.
json op_write_file(const json& req) {
    std::string path = arg_str(req, "path");
    std::uint64_t size = arg_u64(req, "size");
    std::uint64_t seed = arg_u64(req, "seed", 0);
    std::size_t chunk = arg_u64(req, "chunk", kChunk);
    if (chunk == 0 || chunk > 16 * kChunk)
        throw OpError(EINVAL, "write_file: chunk must be 1..16 MiB");
    mkdir_p(dirname_of(path));
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        throw_errno("open " + path);
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[chunk]);
    double t0 = uptime_s();
    for (std::uint64_t off = 0; off < size;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - off));
        pattern::fill(seed, off, buf.get(), n);
        ssize_t w = ::pwrite(fd, buf.get(), n, static_cast<off_t>(off));
        if (w < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            throw_errno("write " + path);
        }
        off += static_cast<std::uint64_t>(w);
    }
    if (arg_bool(req, "fsync", true) && ::fsync(fd) < 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        throw_errno("fsync " + path);
    }
    struct stat st {};
    fstat(fd, &st);
    ::close(fd);
    return {{"ino", st.st_ino}, {"size", st.st_size}, {"seconds", uptime_s() - t0}};
}

// read_file: path, seed [, size (default: the file size), drop_caches=false]. Verifies the
// pattern; a mismatch fails the op with EBADMSG and the first differing offset.
json op_read_file(const json& req) {
    std::string path = arg_str(req, "path");
    std::uint64_t seed = arg_u64(req, "seed", 0);
    if (arg_bool(req, "drop_caches", false))
        drop_caches();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_errno("open " + path);
    struct stat st {};
    fstat(fd, &st);
    std::uint64_t size = arg_u64(req, "size", static_cast<std::uint64_t>(st.st_size));
    std::unique_ptr<std::uint8_t[]> got(new std::uint8_t[kChunk]);
    std::unique_ptr<std::uint8_t[]> want(new std::uint8_t[kChunk]);
    double t0 = uptime_s();
    std::uint64_t off = 0;
    while (off < size) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - off));
        ssize_t r = ::pread(fd, got.get(), n, static_cast<off_t>(off));
        if (r < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            throw_errno("read " + path + " at " + std::to_string(off));
        }
        if (r == 0)
            break;
        auto rn = static_cast<std::size_t>(r);
        pattern::fill(seed, off, want.get(), rn);
        if (std::memcmp(got.get(), want.get(), rn) != 0) {
            std::size_t i = 0;
            while (got[i] == want[i])
                ++i;
            ::close(fd);
            throw OpError(EBADMSG, "content mismatch in " + path + " at offset " +
                                       std::to_string(off + i) + ": got 0x" + to_hex(&got[i], 1) +
                                       " want 0x" + to_hex(&want[i], 1));
        }
        off += rn;
    }
    ::close(fd);
    if (off != size)
        throw OpError(EBADMSG, path + " is short: " + std::to_string(off) + " of " +
                                   std::to_string(size) + " bytes");
    return {{"bytes", off}, {"verified", true}, {"seconds", uptime_s() - t0}};
}

// file_info: path. Inode, size, fscrypt nonce (null if unencrypted), FIEMAP extents.
json op_file_info(const json& req) {
    std::string path = arg_str(req, "path");
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_errno("open " + path);
    struct stat st {};
    fstat(fd, &st);
    json f = {{"ino", st.st_ino}, {"size", st.st_size}, {"blksize", st.st_blksize}};
    std::uint8_t nonce[16];
    if (::ioctl(fd, FS_IOC_GET_NONCE, nonce) == 0)
        f["nonce"] = to_hex(nonce, sizeof nonce);
    else
        f["nonce"] = nullptr;
    constexpr std::uint32_t kMaxExtents = 512;
    std::size_t sz = sizeof(fiemap) + kMaxExtents * sizeof(fiemap_extent);
    std::unique_ptr<std::uint8_t[]> mem(new std::uint8_t[sz]());
    auto* fm = reinterpret_cast<fiemap*>(mem.get());
    fm->fm_start = 0;
    fm->fm_length = ~0ULL;
    fm->fm_flags = FIEMAP_FLAG_SYNC;
    fm->fm_extent_count = kMaxExtents;
    json ext = json::array();
    if (::ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
        for (std::uint32_t i = 0; i < fm->fm_mapped_extents; ++i) {
            const auto& e = fm->fm_extents[i];
            ext.push_back({{"logical", e.fe_logical},
                           {"physical", e.fe_physical},
                           {"length", e.fe_length},
                           {"flags", e.fe_flags}});
        }
        f["extents"] = ext;
    } else {
        f["extents"] = nullptr;
        f["fiemap_errno"] = errno_name(errno);
    }
    ::close(fd);
    return f;
}

json op_remove_file(const json& req) {
    std::string path = arg_str(req, "path");
    if (::unlink(path.c_str()) < 0)
        throw_errno("unlink " + path);
    return json::object();
}

} // namespace icemu::guest
