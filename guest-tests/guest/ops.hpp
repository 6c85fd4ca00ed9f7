// The guest program's operations. Each takes the request object and returns the reply's
// facts (merged into {"id","ok":true,...}); failures throw OpError (errno + message).
// The wire protocol is documented in docs/conformance.md ("Step/reply protocol").
#pragma once
#include <optional>
#include <sys/stat.h>

#include "util.hpp"

namespace icemu::guest {

using OpFn = json (*)(const json& req);

// sys.cpp: system facts, filesystems, caches, power
json op_sysinfo(const json& req);
json op_disks(const json& req);
json op_mkfs(const json& req);
json op_mount(const json& req);
json op_umount(const json& req);
json op_sync(const json& req);
json op_drop_caches(const json& req);
// ACPI S3 ("state": "mem", the only one) ended by the RTC's wake alarm after "wake_after_s"
// seconds; returns once the system has resumed.
json op_suspend(const json& req);
// Runtime PM of the UFS host under "dev": rpm_lvl "level", autosuspend for its SCSI devices,
// wait until the host is runtime-suspended; "allow": false turns runtime PM off again.
json op_runtime_pm(const json& req);

// dm.cpp: device-mapper ioctls on /dev/mapper/control
json op_dm_create(const json& req);
json op_dm_load(const json& req);
json op_dm_resume(const json& req);
json op_dm_suspend(const json& req);
json op_dm_remove(const json& req);
json op_dm_table(const json& req);
json op_dm_clear(const json& req);
json op_dm_message(const json& req);

// fscrypt.cpp: FS_IOC_* encryption ioctls
json op_add_key(const json& req);
json op_remove_key(const json& req);
json op_key_status(const json& req);
json op_set_policy(const json& req);
json op_get_policy(const json& req);

// FS_IOC_ADD_ENCRYPTION_KEY of `n` key bytes on the filesystem at `mnt` (with
// FSCRYPT_ADD_KEY_FLAG_HW_WRAPPED when `hw_wrapped`: the key is an ephemerally-wrapped blob);
// returns the key identifier as 32 hex digits. Shared by add_key, add_wrapped_key and
// fscryptctl add_key.
std::string add_encryption_key(const std::string& mnt, const std::uint8_t* key, std::size_t n,
                               bool hw_wrapped);

// wrapped.cpp: hardware-wrapped keys through the block device's BLKCRYPTO* ioctls (Linux 6.15+),
// shared by the scenario ops below and fscryptctl's commands. Each returns the blob the kernel
// wrote and throws OpError(errno, "<what>: <strerror>") when the ioctl fails.
SecretBuf import_hw_wrapped_key(const std::string& dev, const std::uint8_t* raw, std::size_t n);
SecretBuf generate_hw_wrapped_key(const std::string& dev);
SecretBuf prepare_hw_wrapped_key(const std::string& dev, const std::uint8_t* lt, std::size_t n);
json op_import_wrapped_key(const json& req);
json op_generate_wrapped_key(const json& req);
json op_prepare_wrapped_key(const json& req);
json op_add_wrapped_key(const json& req);

// fscryptctl.cpp: the program run as `fscryptctl` (a fscryptctl-compatible subset)
int fscryptctl_main(int argc, char** argv);

// files.cpp: known-pattern file I/O and layout facts
json op_write_file(const json& req);
json op_read_file(const json& req);
json op_file_info(const json& req);
json op_remove_file(const json& req);
// The pattern I/O behind write_file/read_file, shared with multifile.cpp.
struct stat write_pattern_file(const std::string& path, std::uint64_t size, std::uint64_t seed,
                               std::size_t chunk, bool fsync);
std::uint64_t verify_pattern_file(const std::string& path, std::uint64_t seed,
                                  std::optional<std::uint64_t> size, std::size_t chunk);

// multifile.cpp: known-pattern I/O on several files from several threads (keyslot pressure)
json op_write_files(const json& req);
json op_read_files(const json& req);

// blockdev.cpp: known-pattern raw device I/O (pattern addressed by device offset)
json op_write_dev(const json& req);
json op_read_dev(const json& req);

// bench.cpp: timed O_DIRECT I/O for bench/icemu-bench
json op_bench_io(const json& req);

void drop_caches(); // sync + "3" > drop_caches

} // namespace icemu::guest
