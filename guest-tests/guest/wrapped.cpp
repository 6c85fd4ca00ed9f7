// Hardware-wrapped inline-encryption keys (Linux 6.15+ block layer, 6.16+ fscrypt): the
// BLKCRYPTO{IMPORT,GENERATE,PREPARE}KEY ioctls of a block device whose queue/crypto shows
// hw_wrapped_keys, and the scenario ops over them. fscryptctl.cpp's commands use the same
// functions. Blobs travel as hex in requests and replies.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>

#include "ops.hpp"
#include "uapi.hpp"

namespace icemu::guest {
namespace {

using namespace uapi;

// The ioctl `req` on block device `dev`; throws OpError("<what>: <strerror>") when it fails
// (fscryptctl's message, which shell.fscryptctl and fstests' logs see).
void blk_ioctl(const std::string& dev, unsigned long req, void* arg, const char* what) {
    Fd fd(dev, O_RDONLY);
    if (::ioctl(fd.get(), req, arg) < 0)
        throw_errno(what);
}

std::uint64_t ptr(const std::uint8_t* p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

// A blob argument (hex) with the scenario's deliberate damage applied: "size": N keeps only
// the first N bytes (a truncated blob), then "flip_byte": N XORs byte N with 0x01.
SecretBuf blob_arg(const json& req, const char* key) {
    SecretBuf b;
    b.b = from_hex(arg_str(req, key));
    if (req.contains("size")) {
        std::uint64_t n = arg_u64(req, "size");
        if (n > b.size())
            throw OpError(EINVAL, "size " + std::to_string(n) + " is larger than the " +
                                      std::to_string(b.size()) + "-byte blob");
        explicit_bzero(b.data() + n, b.size() - n);
        b.b.resize(n);
    }
    if (req.contains("flip_byte")) {
        std::uint64_t i = arg_u64(req, "flip_byte");
        if (i >= b.size())
            throw OpError(EINVAL, "flip_byte " + std::to_string(i) + " is past the " +
                                      std::to_string(b.size()) + "-byte blob");
        b.b[i] ^= 0x01;
    }
    return b;
}

json blob_reply(const char* name, const SecretBuf& b) {
    return {{name, to_hex(b.data(), b.size())}, {std::string(name) + "_size", b.size()}};
}

} // namespace

SecretBuf import_hw_wrapped_key(const std::string& dev, const std::uint8_t* raw, std::size_t n) {
    SecretBuf lt(kMaxWrappedKeySize);
    ImportKeyArg a{};
    a.raw_key_ptr = ptr(raw);
    a.raw_key_size = n;
    a.lt_key_ptr = ptr(lt.data());
    a.lt_key_size = lt.size();
    blk_ioctl(dev, BLKCRYPTOIMPORTKEY, &a, "importing hardware-wrapped key");
    lt.b.resize(a.lt_key_size);
    return lt;
}

SecretBuf generate_hw_wrapped_key(const std::string& dev) {
    SecretBuf lt(kMaxWrappedKeySize);
    GenerateKeyArg a{};
    a.lt_key_ptr = ptr(lt.data());
    a.lt_key_size = lt.size();
    blk_ioctl(dev, BLKCRYPTOGENERATEKEY, &a, "generating hardware-wrapped key");
    lt.b.resize(a.lt_key_size);
    return lt;
}

SecretBuf prepare_hw_wrapped_key(const std::string& dev, const std::uint8_t* lt, std::size_t n) {
    SecretBuf eph(kMaxWrappedKeySize);
    PrepareKeyArg a{};
    a.lt_key_ptr = ptr(lt);
    a.lt_key_size = n;
    a.eph_key_ptr = ptr(eph.data());
    a.eph_key_size = eph.size();
    blk_ioctl(dev, BLKCRYPTOPREPAREKEY, &a, "preparing hardware-wrapped key");
    eph.b.resize(a.eph_key_size);
    return eph;
}

// import_wrapped_key: dev, key (hex raw key). Returns lt_blob (hex) and lt_blob_size.
json op_import_wrapped_key(const json& req) {
    SecretBuf raw;
    raw.b = from_hex(arg_str(req, "key"));
    return blob_reply("lt_blob",
                      import_hw_wrapped_key(arg_str(req, "dev"), raw.data(), raw.size()));
}

// generate_wrapped_key: dev. Returns lt_blob (hex) and lt_blob_size.
json op_generate_wrapped_key(const json& req) {
    return blob_reply("lt_blob", generate_hw_wrapped_key(arg_str(req, "dev")));
}

// prepare_wrapped_key: dev, blob (hex long-term blob) [, flip_byte, size]. Returns eph_blob.
json op_prepare_wrapped_key(const json& req) {
    SecretBuf lt = blob_arg(req, "blob");
    return blob_reply("eph_blob",
                      prepare_hw_wrapped_key(arg_str(req, "dev"), lt.data(), lt.size()));
}

// add_wrapped_key: mnt, blob (hex ephemerally-wrapped blob) [, flip_byte, size]. Adds it with
// FSCRYPT_ADD_KEY_FLAG_HW_WRAPPED; returns the identifier (derived from the software secret).
json op_add_wrapped_key(const json& req) {
    SecretBuf eph = blob_arg(req, "blob");
    return {{"identifier", add_encryption_key(arg_str(req, "mnt"), eph.data(), eph.size(), true)}};
}

} // namespace icemu::guest
