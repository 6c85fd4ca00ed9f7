// `fscryptctl`: icemu-guest run under that name (a symlink in the guest's root filesystem) is
// a command-line compatible subset of fscryptctl (github.com/google/fscryptctl) for what
// fstests' common/encrypt calls: hardware-wrapped key import / generation / preparation
// through the BLKCRYPTO* ioctls of the block device, and FS_IOC_ADD_ENCRYPTION_KEY (with
// --hw-wrapped-key) and FS_IOC_REMOVE_ENCRYPTION_KEY on a mount point. Keys are read raw from
// stdin and blobs are written raw to stdout, so the commands pipe into one another like
// fscryptctl's:  import_hw_wrapped_key DEV < raw | prepare_hw_wrapped_key DEV | add_key
// --hw-wrapped-key MNT. The ioctls are the scenario ops' (wrapped.cpp, add_encryption_key in
// fscrypt.cpp); key buffers are wiped.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vector>

#include "ops.hpp"
#include "uapi.hpp"

namespace icemu::guest {
namespace {

using namespace uapi;

constexpr std::size_t kMinKeySize = 16; // FSCRYPT_MIN_KEY_SIZE

const char kUsage[] =
    "Usage:\n"
    "  fscryptctl <command> [arguments] [options]\n"
    "\n"
    "icemu's implementation of the fscryptctl commands fstests uses (the guest program\n"
    "icemu-guest under another name). Keys and blobs are raw bytes on stdin / stdout.\n"
    "\n"
    "Commands:\n"
    "  fscryptctl add_key [--hw-wrapped-key] <mountpoint>\n"
    "    Read a key from stdin, add it to the mounted filesystem, print its identifier.\n"
    "  fscryptctl remove_key [--all-users] <key identifier> <mountpoint>\n"
    "    Remove the key with that identifier from the mounted filesystem.\n"
    "  fscryptctl import_hw_wrapped_key <block device>\n"
    "    Create a hardware-wrapped key by importing a raw key (stdin); print the long-term blob.\n"
    "  fscryptctl generate_hw_wrapped_key <block device>\n"
    "    Create a hardware-wrapped key generated in hardware; print the long-term blob.\n"
    "  fscryptctl prepare_hw_wrapped_key <block device>\n"
    "    Convert a long-term blob (stdin) to the ephemerally-wrapped blob (stdout).\n"
    "\n"
    "Options:\n"
    "  -h, --help      this help\n"
    "  -v, --version   the version\n";

int fail(const std::string& msg) {
    std::fprintf(stderr, "error: %s\n", msg.c_str());
    return 1;
}

// Reads all of stdin into `buf` (at most `max` bytes); 0 after printing an error.
std::size_t read_key(SecretBuf& buf, std::size_t max) {
    std::size_t n = 0;
    for (;;) {
        if (n == buf.b.size())
            buf.b.resize(buf.b.size() + 1); // one byte past max tells "too long"
        ssize_t r = ::read(STDIN_FILENO, buf.data() + n, buf.b.size() - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fail(std::string("reading from stdin: ") + std::strerror(errno));
            return 0;
        }
        if (r == 0)
            break;
        n += static_cast<std::size_t>(r);
        if (n > max)
            break;
    }
    if (n < kMinKeySize) {
        fail("key was too short; it must be at least " + std::to_string(kMinKeySize) + " bytes");
        return 0;
    }
    if (n > max) {
        fail("key was too long; it can be at most " + std::to_string(max) + " bytes");
        return 0;
    }
    return n;
}

bool write_all(const std::uint8_t* p, std::size_t n) {
    while (n) {
        ssize_t w = ::write(STDOUT_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fail(std::string("writing output: ") + std::strerror(errno));
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

// Runs `f`; an OpError (a failed ioctl or open) becomes "error: <message>" and status 1.
template <class F>
int guarded(F f) {
    try {
        return f();
    } catch (const OpError& e) {
        return fail(e.what());
    }
}

// Splits argv after the command into options (--x) and operands.
struct Args {
    std::vector<std::string_view> opts, operands;
};
Args split(int argc, char** argv) {
    Args a;
    for (int i = 2; i < argc; ++i) {
        std::string_view s = argv[i];
        (s.size() > 2 && s.substr(0, 2) == "--" ? a.opts : a.operands).push_back(s);
    }
    return a;
}

bool only_options(const Args& a, std::initializer_list<std::string_view> allowed) {
    for (auto o : a.opts) {
        bool ok = false;
        for (auto x : allowed)
            ok = ok || o == x;
        if (!ok) {
            fail("unknown option '" + std::string(o) + "'");
            return false;
        }
    }
    return true;
}

bool has(const Args& a, std::string_view opt) {
    for (auto o : a.opts)
        if (o == opt)
            return true;
    return false;
}

int cmd_add_key(const Args& a) {
    if (!only_options(a, {"--hw-wrapped-key"}))
        return 1;
    if (a.operands.size() != 1)
        return fail("must specify a single mountpoint");
    const bool wrapped = has(a, "--hw-wrapped-key");
    SecretBuf key(kMaxWrappedKeySize);
    std::size_t n = read_key(key, wrapped ? kMaxWrappedKeySize : kMaxRawKeySize);
    if (n == 0)
        return 1;
    const std::string mnt(a.operands[0]);
    return guarded([&] {
        std::printf("%s\n", add_encryption_key(mnt, key.data(), n, wrapped).c_str());
        return 0;
    });
}

int cmd_remove_key(const Args& a) {
    if (!only_options(a, {"--all-users"}))
        return 1;
    if (a.operands.size() != 2)
        return fail("must specify a key identifier and a mountpoint");
    RemoveKeyArg arg{};
    std::string_view id = a.operands[0];
    if (id.size() != 2 * kIdentifierSize)
        return fail("invalid key identifier: " + std::string(id));
    for (std::size_t i = 0; i < kIdentifierSize; ++i) {
        unsigned v = 0;
        if (std::sscanf(std::string(id.substr(2 * i, 2)).c_str(), "%2x", &v) != 1)
            return fail("invalid key identifier: " + std::string(id));
        arg.key_spec.u[i] = static_cast<std::uint8_t>(v);
    }
    arg.key_spec.type = kKeySpecIdentifier;
    const std::string mnt(a.operands[1]);
    const unsigned long req = has(a, "--all-users") ? FS_IOC_REMOVE_KEY_ALL : FS_IOC_REMOVE_KEY;
    if (guarded([&] {
            Fd fd(mnt, O_RDONLY);
            if (::ioctl(fd.get(), req, &arg) < 0)
                throw_errno("removing key");
            return 0;
        }))
        return 1;
    if (arg.removal_status_flags & 0x2) // FSCRYPT_KEY_REMOVAL_STATUS_FLAG_OTHER_USERS
        std::printf("warning: other users still have this key added\n");
    else if (arg.removal_status_flags & 0x1) // ..._FILES_BUSY
        std::printf("warning: some files using this key are still in-use\n");
    return 0;
}

// The single block device the wrapped-key commands take; "" after printing the error.
std::string one_device(const Args& a) {
    if (!only_options(a, {}))
        return "";
    if (a.operands.size() != 1) {
        fail("must specify a single block device");
        return "";
    }
    return std::string(a.operands[0]);
}

// Reads a key (at most `max` bytes) from stdin unless `max` is 0, runs `make` on it and writes
// the blob it returns to stdout.
template <class F>
int blob_command(const Args& a, std::size_t max, F make) {
    const std::string dev = one_device(a);
    if (dev.empty())
        return 1;
    SecretBuf in(max);
    std::size_t n = max ? read_key(in, max) : 0;
    if (max && n == 0)
        return 1;
    return guarded([&] {
        SecretBuf out = make(dev, in.data(), n);
        return write_all(out.data(), out.size()) ? 0 : 1;
    });
}

int cmd_import(const Args& a) {
    return blob_command(a, kMaxRawKeySize, import_hw_wrapped_key);
}

int cmd_generate(const Args& a) {
    return blob_command(a, 0, [](const std::string& dev, const std::uint8_t*, std::size_t) {
        return generate_hw_wrapped_key(dev);
    });
}

int cmd_prepare(const Args& a) {
    return blob_command(a, kMaxWrappedKeySize, prepare_hw_wrapped_key);
}

} // namespace

int fscryptctl_main(int argc, char** argv) {
    const std::string_view cmd = argc > 1 ? argv[1] : "";
    if (cmd == "-h" || cmd == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (cmd == "-v" || cmd == "--version") {
        std::puts("icemu fscryptctl (subset of fscryptctl v1.3.0's commands)");
        return 0;
    }
    const Args a = split(argc, argv);
    if (cmd == "add_key")
        return cmd_add_key(a);
    if (cmd == "remove_key")
        return cmd_remove_key(a);
    if (cmd == "import_hw_wrapped_key")
        return cmd_import(a);
    if (cmd == "generate_hw_wrapped_key")
        return cmd_generate(a);
    if (cmd == "prepare_hw_wrapped_key")
        return cmd_prepare(a);
    if (cmd.empty()) {
        std::fputs("error: no command specified\n", stderr);
        std::fputs(kUsage, stderr);
        return 1;
    }
    std::fprintf(stderr,
                 "error: '%s' is not one of icemu fscryptctl's commands (see --help; for "
                 "policies use xfs_io -c set_encpolicy / get_encpolicy)\n",
                 std::string(cmd).c_str());
    return 1;
}

} // namespace icemu::guest
