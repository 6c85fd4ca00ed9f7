// fscrypt v2 ioctls (the UAPI declarations are in uapi.hpp).
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ops.hpp"
#include "uapi.hpp"

namespace icemu::guest {
namespace {

using namespace uapi;

// A v1 key is named by its 8-byte descriptor (the scenario's choice; the kernel does not derive
// it), a v2 key by the identifier the kernel derived.
void set_descriptor(KeySpecifier& ks, const std::string& hex) {
    auto d = from_hex(hex);
    if (d.size() != kDescriptorSize)
        throw OpError(EINVAL, "key descriptor must be 8 bytes (16 hex digits)");
    ks.type = kKeySpecDescriptor;
    std::memcpy(ks.u, d.data(), d.size());
}

void set_identifier(KeySpecifier& ks, const std::string& hex) {
    auto id = from_hex(hex);
    if (id.size() != kIdentifierSize)
        throw OpError(EINVAL, "key identifier must be 16 bytes (32 hex digits)");
    ks.type = kKeySpecIdentifier;
    std::memcpy(ks.u, id.data(), id.size());
}

std::uint8_t policy_flags(const json& req) {
    auto it = req.find("flags");
    std::uint8_t f = 0;
    if (it != req.end() && it->is_number_unsigned())
        f = it->get<std::uint8_t>();
    else {
        std::string s = arg_str(req, "flags", "none");
        if (s == "iv_ino_lblk_64")
            f = kFlagIvInoLblk64;
        else if (s == "iv_ino_lblk_32")
            f = kFlagIvInoLblk32;
        else if (s == "direct_key")
            f = kFlagDirectKey;
        else if (s != "none" && s != "default")
            throw OpError(EINVAL, "unknown policy flags '" + s + "'");
    }
    // padding: 4, 8, 16 or 32 bytes of filename padding (flags bits 0-1)
    std::uint64_t pad = arg_u64(req, "padding", 32);
    std::uint8_t padbits = pad == 4 ? 0 : pad == 8 ? 1 : pad == 16 ? 2 : 3;
    return static_cast<std::uint8_t>(f | padbits);
}

// fscrypt mode names (include/uapi/linux/fscrypt.h FSCRYPT_MODE_*) of the valid v2 pairs:
// contents aes-256-xts / aes-128-cbc (ESSIV) / adiantum, filenames aes-256-cts /
// aes-256-hctr2 / aes-128-cts / adiantum. The kernel judges the pair (EINVAL).
std::uint8_t mode_number(const std::string& name, bool contents) {
    if (contents) {
        if (name == "aes-256-xts")
            return kModeAes256Xts;
        if (name == "aes-128-cbc" || name == "aes-128-cbc-essiv")
            return kModeAes128Cbc;
        if (name == "adiantum")
            return kModeAdiantum;
        throw OpError(EINVAL, "set_policy: unknown contents mode '" + name +
                                  "' (aes-256-xts, aes-128-cbc-essiv, adiantum)");
    }
    if (name == "aes-256-cts")
        return kModeAes256Cts;
    if (name == "aes-256-hctr2")
        return kModeAes256Hctr2;
    if (name == "aes-128-cts")
        return kModeAes128Cts;
    if (name == "adiantum")
        return kModeAdiantum;
    throw OpError(EINVAL, "set_policy: unknown filenames mode '" + name +
                              "' (aes-256-cts, aes-256-hctr2, aes-128-cts, adiantum)");
}

// FS_IOC_ADD_ENCRYPTION_KEY of the n-byte `key` with `a`'s key spec and flags; the key's copy
// in `a` is wiped whatever happens. Returns the first `spec_len` bytes of the key spec in hex
// (the kernel's identifier, or the descriptor given).
std::string add_key_ioctl(const std::string& mnt, AddKeyArg& a, const std::uint8_t* key,
                          std::size_t n, const std::string& what, std::size_t spec_len) {
    a.raw_size = static_cast<std::uint32_t>(n);
    std::memcpy(a.raw, key, n);
    Fd fd(mnt, O_RDONLY);
    int r = ::ioctl(fd.get(), FS_IOC_ADD_KEY, &a);
    int e = errno;
    explicit_bzero(a.raw, sizeof a.raw);
    if (r < 0) {
        errno = e;
        throw_errno(what + " on " + mnt);
    }
    return to_hex(a.key_spec.u, spec_len);
}

} // namespace

std::string add_encryption_key(const std::string& mnt, const std::uint8_t* key, std::size_t n,
                               bool hw_wrapped) {
    AddKeyArg a{};
    if (n == 0 || n > sizeof a.raw)
        throw OpError(EINVAL, "FS_IOC_ADD_ENCRYPTION_KEY: a key is 1.." +
                                  std::to_string(sizeof a.raw) + " bytes");
    a.key_spec.type = kKeySpecIdentifier;
    a.flags = hw_wrapped ? kAddKeyFlagHwWrapped : 0;
    return add_key_ioctl(mnt, a, key, n, "FS_IOC_ADD_ENCRYPTION_KEY", kIdentifierSize);
}

// add_key: mnt, key (hex, 16..64 bytes) [, descriptor (16 hex digits): a v1 policy key,
// added by descriptor to the filesystem keyring]. Returns the kernel's key identifier, or for a
// v1 key the descriptor.
json op_add_key(const json& req) {
    std::string mnt = arg_str(req, "mnt");
    SecretBuf key;
    key.b = from_hex(arg_str(req, "key"));
    if (key.size() == 0 || key.size() > kMaxRawKeySize)
        throw OpError(EINVAL, "add_key: key must be 1..64 bytes");
    if (!req.contains("descriptor"))
        return {{"identifier", add_encryption_key(mnt, key.data(), key.size(), false)}};
    AddKeyArg a{};
    set_descriptor(a.key_spec, arg_str(req, "descriptor"));
    return {
        {"descriptor", add_key_ioctl(mnt, a, key.data(), key.size(),
                                     "FS_IOC_ADD_ENCRYPTION_KEY (descriptor)", kDescriptorSize)}};
}

namespace {
// The key of remove_key / key_status: "descriptor" (v1) or "identifier" (v2).
void set_key_spec(KeySpecifier& ks, const json& req) {
    if (req.contains("descriptor"))
        set_descriptor(ks, arg_str(req, "descriptor"));
    else
        set_identifier(ks, arg_str(req, "identifier"));
}
} // namespace

// remove_key: mnt, identifier or descriptor [, all_users]. Returns removal_status_flags decoded.
json op_remove_key(const json& req) {
    std::string mnt = arg_str(req, "mnt");
    RemoveKeyArg a{};
    set_key_spec(a.key_spec, req);
    Fd fd(mnt, O_RDONLY | O_DIRECTORY);
    auto cmd = arg_bool(req, "all_users", false) ? FS_IOC_REMOVE_KEY_ALL : FS_IOC_REMOVE_KEY;
    if (::ioctl(fd.get(), cmd, &a) < 0)
        throw_errno("FS_IOC_REMOVE_ENCRYPTION_KEY on " + mnt);
    return {{"removal_status_flags", a.removal_status_flags},
            {"files_busy", (a.removal_status_flags & 1) != 0},
            {"other_users", (a.removal_status_flags & 2) != 0}};
}

// key_status: mnt, identifier or descriptor. status is "absent", "present" or
// "incompletely_removed".
json op_key_status(const json& req) {
    std::string mnt = arg_str(req, "mnt");
    KeyStatusArg a{};
    set_key_spec(a.key_spec, req);
    Fd fd(mnt, O_RDONLY | O_DIRECTORY);
    if (::ioctl(fd.get(), FS_IOC_KEY_STATUS, &a) < 0)
        throw_errno("FS_IOC_GET_ENCRYPTION_KEY_STATUS on " + mnt);
    const char* names[] = {"unknown", "absent", "present", "incompletely_removed"};
    return {{"status", a.status <= 3 ? names[a.status] : "unknown"},
            {"status_code", a.status},
            {"status_flags", a.status_flags},
            {"user_count", a.user_count}};
}

// The reply form of a v2 policy (what set_policy applied / get_policy read).
json policy_json(const PolicyV2& p) {
    return {{"version", 2},
            {"contents", p.contents_encryption_mode},
            {"filenames", p.filenames_encryption_mode},
            {"flags", p.flags},
            {"log2_data_unit_size", p.log2_data_unit_size},
            {"identifier", to_hex(p.master_key_identifier, kIdentifierSize)}};
}

// The reply form of a v1 policy (version byte 0, reported as version 1).
json policy_json(const PolicyV1& p) {
    return {{"version", 1},
            {"contents", p.contents_encryption_mode},
            {"filenames", p.filenames_encryption_mode},
            {"flags", p.flags},
            {"descriptor", to_hex(p.master_key_descriptor, kDescriptorSize)}};
}

// FS_IOC_SET_ENCRYPTION_POLICY of a v1 or v2 policy on `dir`; the reply is the policy set.
template <typename Policy>
json set_policy_on(const std::string& dir, const Policy& p, const char* what) {
    Fd fd(dir, O_RDONLY | O_DIRECTORY);
    if (::ioctl(fd.get(), FS_IOC_SET_POLICY, &p) < 0)
        throw_errno(std::string("FS_IOC_SET_ENCRYPTION_POLICY") + what + " on " + dir);
    return {{"policy", policy_json(p)}};
}

// set_policy: dir (created if missing; must be empty), identifier, flags
// ("none"|"iv_ino_lblk_64"|"iv_ino_lblk_32"|"direct_key"|number), log2_data_unit_size (0 =
// the block size), contents ("aes-256-xts"|"aes-128-cbc-essiv"|"adiantum"), filenames
// ("aes-256-cts"|"aes-256-hctr2"|"aes-128-cts"|"adiantum"),
// padding (32). version 1 (deprecated v1 policy): descriptor (16 hex digits) instead of
// identifier, no log2_data_unit_size.
json op_set_policy(const json& req) {
    std::string dir = arg_str(req, "dir");
    mkdir_p(dir);
    if (arg_u64(req, "version", 2) == 1) {
        PolicyV1 p{};
        p.version = kPolicyV1;
        p.contents_encryption_mode = mode_number(arg_str(req, "contents", "aes-256-xts"), true);
        p.filenames_encryption_mode = mode_number(arg_str(req, "filenames", "aes-256-cts"), false);
        p.flags = policy_flags(req);
        auto d = from_hex(arg_str(req, "descriptor"));
        if (d.size() != kDescriptorSize)
            throw OpError(EINVAL, "descriptor must be 8 bytes");
        std::memcpy(p.master_key_descriptor, d.data(), d.size());
        return set_policy_on(dir, p, " (v1)");
    }
    PolicyV2 p{};
    p.version = 2;
    p.contents_encryption_mode = mode_number(arg_str(req, "contents", "aes-256-xts"), true);
    p.filenames_encryption_mode = mode_number(arg_str(req, "filenames", "aes-256-cts"), false);
    p.flags = policy_flags(req);
    p.log2_data_unit_size = static_cast<std::uint8_t>(arg_u64(req, "log2_data_unit_size", 0));
    auto id = from_hex(arg_str(req, "identifier"));
    if (id.size() != kIdentifierSize)
        throw OpError(EINVAL, "identifier must be 16 bytes");
    std::memcpy(p.master_key_identifier, id.data(), id.size());
    return set_policy_on(dir, p, "");
}

// get_policy: path. The v1 or v2 policy of a file or directory.
json op_get_policy(const json& req) {
    std::string path = arg_str(req, "path");
    GetPolicyExArg a{};
    a.policy_size = sizeof a.policy;
    Fd fd(path, O_RDONLY);
    if (::ioctl(fd.get(), FS_IOC_GET_POLICY_EX, &a) < 0)
        throw_errno("FS_IOC_GET_ENCRYPTION_POLICY_EX on " + path);
    if (a.policy.version == kPolicyV1)
        return {{"policy", policy_json(a.policy.v1)}};
    if (a.policy.version != 2)
        return {{"policy", {{"version", a.policy.version}}}};
    const PolicyV2& p = a.policy.v2;
    return {{"policy", policy_json(p)}};
}

} // namespace icemu::guest
