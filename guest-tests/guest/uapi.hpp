// The Linux UAPI structures and ioctl numbers the guest program uses for fscrypt
// (include/uapi/linux/fscrypt.h) and blk-crypto hardware-wrapped keys
// (include/uapi/linux/blk-crypto.h), as in Linux 7.3. Declared here so the build does not
// depend on the host's kernel headers, which may predate log2_data_unit_size and wrapped keys.
#pragma once
#include <cstddef>
#include <cstdint>
#include <sys/ioctl.h>

namespace icemu::guest::uapi {

constexpr std::uint8_t kModeAes256Xts = 1;
constexpr std::uint8_t kModeAes256Cts = 4;
constexpr std::uint8_t kModeAes128Cbc = 5; // contents: AES-128-CBC-ESSIV
constexpr std::uint8_t kModeAes128Cts = 6;
constexpr std::uint8_t kModeAdiantum = 9;
constexpr std::uint8_t kModeAes256Hctr2 = 10;
constexpr std::uint8_t kFlagDirectKey = 0x04;
constexpr std::uint8_t kFlagIvInoLblk64 = 0x08;
constexpr std::uint8_t kFlagIvInoLblk32 = 0x10;
constexpr std::uint32_t kKeySpecDescriptor = 1; ///< FSCRYPT_KEY_SPEC_TYPE_DESCRIPTOR (v1)
constexpr std::uint32_t kKeySpecIdentifier = 2;
constexpr std::size_t kIdentifierSize = 16;
constexpr std::size_t kDescriptorSize = 8; ///< FSCRYPT_KEY_DESCRIPTOR_SIZE
constexpr std::uint8_t kPolicyV1 = 0;      ///< FSCRYPT_POLICY_V1 (the version byte is 0)

struct PolicyV1 {
    std::uint8_t version; // 0
    std::uint8_t contents_encryption_mode;
    std::uint8_t filenames_encryption_mode;
    std::uint8_t flags;
    std::uint8_t master_key_descriptor[kDescriptorSize];
};
static_assert(sizeof(PolicyV1) == 12);

struct PolicyV2 {
    std::uint8_t version; // 2
    std::uint8_t contents_encryption_mode;
    std::uint8_t filenames_encryption_mode;
    std::uint8_t flags;
    std::uint8_t log2_data_unit_size;
    std::uint8_t reserved[3];
    std::uint8_t master_key_identifier[kIdentifierSize];
};
static_assert(sizeof(PolicyV2) == 24);

struct KeySpecifier {
    std::uint32_t type;
    std::uint32_t reserved;
    std::uint8_t u[32];
};

struct AddKeyArg {
    KeySpecifier key_spec;
    std::uint32_t raw_size;
    std::uint32_t key_id;
    std::uint32_t flags; // 7.x: HW_WRAPPED; must be 0 on 6.12 (part of __reserved there)
    std::uint32_t reserved[7];
    std::uint8_t raw[128]; // FSCRYPT_MAX_HW_WRAPPED_KEY_SIZE; raw keys are <= 64
};

struct RemoveKeyArg {
    KeySpecifier key_spec;
    std::uint32_t removal_status_flags;
    std::uint32_t reserved[5];
};

struct KeyStatusArg {
    KeySpecifier key_spec;
    std::uint32_t reserved[6];
    std::uint32_t status;
    std::uint32_t status_flags;
    std::uint32_t user_count;
    std::uint32_t out_reserved[13];
};

struct GetPolicyExArg {
    std::uint64_t policy_size;
    union {
        std::uint8_t version;
        PolicyV1 v1;
        PolicyV2 v2;
        std::uint8_t pad[32];
    } policy;
};

const unsigned long FS_IOC_SET_POLICY = _IOR('f', 19, std::uint8_t[12]); // size of v1 policy
const unsigned long FS_IOC_GET_POLICY_EX = _IOWR('f', 22, std::uint8_t[9]);
const unsigned long FS_IOC_ADD_KEY = _IOWR('f', 23, std::uint8_t[80]);
const unsigned long FS_IOC_REMOVE_KEY = _IOWR('f', 24, std::uint8_t[64]);
const unsigned long FS_IOC_REMOVE_KEY_ALL = _IOWR('f', 25, std::uint8_t[64]);
const unsigned long FS_IOC_KEY_STATUS = _IOWR('f', 26, std::uint8_t[128]);

constexpr std::uint32_t kAddKeyFlagHwWrapped = 0x1; ///< FSCRYPT_ADD_KEY_FLAG_HW_WRAPPED
constexpr std::size_t kMaxRawKeySize = 64;          ///< FSCRYPT_MAX_KEY_SIZE
constexpr std::size_t kMaxWrappedKeySize = 128;     ///< BLK_CRYPTO_MAX_HW_WRAPPED_KEY_SIZE

struct ImportKeyArg { ///< struct blk_crypto_import_key_arg
    std::uint64_t raw_key_ptr, raw_key_size, lt_key_ptr, lt_key_size;
    std::uint64_t reserved[4];
};
struct GenerateKeyArg { ///< struct blk_crypto_generate_key_arg
    std::uint64_t lt_key_ptr, lt_key_size;
    std::uint64_t reserved[4];
};
struct PrepareKeyArg { ///< struct blk_crypto_prepare_key_arg
    std::uint64_t lt_key_ptr, lt_key_size, eph_key_ptr, eph_key_size;
    std::uint64_t reserved[4];
};
const unsigned long BLKCRYPTOIMPORTKEY = _IOWR(0x12, 137, ImportKeyArg);
const unsigned long BLKCRYPTOGENERATEKEY = _IOWR(0x12, 138, GenerateKeyArg);
const unsigned long BLKCRYPTOPREPAREKEY = _IOWR(0x12, 139, PrepareKeyArg);

} // namespace icemu::guest::uapi
