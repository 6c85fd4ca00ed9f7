// The kernel rule table (see kernel_rules.hpp). Sources were read in Debian's linux-source-6.1
// 6.1.192-3, linux-source-6.12 6.12.117-1 and linux-source-7.3 7.3.4-1~bpo13+1; commit ids are
// mainline's. A range whose lower bound is a Debian point release (6.1.192, 6.12.117, 7.3) marks
// a behaviour whose introduction into that series was not pinned down: the table only claims
// what the trees it was read in show, and releases below them are outside every series.
#include "icemu/models/kernel_rules.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <utility>

namespace icemu::models::kernel {

std::string Version::str() const {
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

Version parse_version(std::string_view rel) {
    const auto bad = [&]() {
        return std::invalid_argument(
            "'" + std::string(rel) +
            "' is not a kernel release (want e.g. 6.12.117 or 7.3.4-icemu)");
    };
    unsigned parts[3] = {0, 0, 0};
    std::size_t pos = 0;
    int n = 0;
    for (; n < 3; ++n) {
        const char* b = rel.data() + pos;
        const char* e = rel.data() + rel.size();
        auto [p, ec] = std::from_chars(b, e, parts[n]);
        if (ec != std::errc() || p == b) {
            throw bad();
        }
        pos = static_cast<std::size_t>(p - rel.data());
        if (pos == rel.size() || rel[pos] != '.' || n == 2) {
            break;
        }
        ++pos;
    }
    if (n < 1) {
        throw bad(); // "7" alone is a series, not a release
    }
    // Debian and local suffixes: "-icemu", "-28-amd64", "+deb13". A letter or a second dot is
    // a typo ("6.12x", "6.12.117.1").
    if (pos < rel.size() && rel[pos] != '-' && rel[pos] != '+') {
        throw bad();
    }
    return Version{parts[0], parts[1], parts[2]};
}

namespace {
constexpr Version v(unsigned a, unsigned b, unsigned c = 0) {
    return Version{a, b, c};
}

// The series: where the table was read. Releases outside these ranges get no rules.
const std::vector<Series> kSeries = {
    {"6.1", {v(6, 1, 192), v(6, 2)}, "linux-source-6.1 6.1.192-3 (bookworm-security)"},
    {"6.12", {v(6, 12, 117), v(6, 13)}, "linux-source-6.12 6.12.117-1 (trixie)"},
    {"7", {v(7, 3), v(8, 0)}, "linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)"},
};

const std::vector<Rule> kRules = {
    // ---- device-mapper passthrough (DM_TARGET_PASSES_CRYPTO in the target's features) ----
    {"dm-passthrough-linear",
     Kind::behaviour,
     "dm-linear passes its device's inline-crypto capabilities through",
     {{v(5, 12), kForever}},
     "drivers/md/dm-linear.c linear_target.features; 3db564b4f592 \"dm: set "
     "DM_TARGET_PASSES_CRYPTO feature for some targets\" (v5.12)",
     ""},
    {"dm-passthrough-flakey",
     Kind::behaviour,
     "dm-flakey passes its device's inline-crypto capabilities through",
     {{v(5, 12), kForever}},
     "drivers/md/dm-flakey.c flakey_target.features; 3db564b4f592 \"dm: set "
     "DM_TARGET_PASSES_CRYPTO feature for some targets\" (v5.12)",
     ""},
    {"dm-passthrough-striped",
     Kind::behaviour,
     "dm-stripe passes the intersection of its stripes' capabilities through",
     {{v(6, 15), kForever}},
     "drivers/md/dm-stripe.c stripe_target.features; a8b8a126c857 \"dm: Enable inline crypto "
     "passthrough for striped target\" (v6.15); absent in 6.12.117 and 6.1.192",
     ""},
    {"dm-passthrough-thin",
     Kind::behaviour,
     "thin-pool (its data device) and thin pass crypto through",
     {{v(7, 3), kForever}},
     "drivers/md/dm-thin.c pool_target/thin_target.features in 7.3.4; absent in 6.12.117 and "
     "6.1.192 (introducing commit not identified: the lower bound is the oldest tree read)",
     ""},
    {"dm-inlinecrypt-target",
     Kind::behaviour,
     "the dm-inlinecrypt target exists (CONFIG_DM_INLINECRYPT)",
     {{v(7, 3), kForever}},
     "drivers/md/dm-inlinecrypt.c and drivers/md/Kconfig DM_INLINECRYPT in 7.3.4; absent in "
     "6.12.117 and 6.1.192 (\"dm-inlinecrypt: add target for inline block device encryption\"; "
     "lower bound: the oldest tree read)",
     ""},
    // ---- blk-crypto key types (hardware-wrapped keys) ----
    {"blk-crypto-key-types",
     Kind::behaviour,
     "crypto profiles carry the supported key types (raw, hardware-wrapped); a key of a type the "
     "profile lacks is not supported natively (only a raw key may then use blk-crypto-fallback)",
     {{v(6, 15), kForever}},
     "block/blk-crypto-profile.c key_types_supported, block/blk-crypto.c "
     "blk_crypto_config_supported_natively() and blk_crypto_start_using_key() (7.3.4); "
     "ebc4176551cd \"blk-crypto: add basic hardware-wrapped key support\" (v6.15)",
     ""},
    {"dm-reload-compares-key-types",
     Kind::behaviour,
     "a dm table reload must keep the queue's supported key types (blk_crypto_has_capabilities)",
     {{v(6, 15), kForever}},
     "block/blk-crypto-profile.c blk_crypto_has_capabilities(), blk_crypto_intersect_"
     "capabilities(); ebc4176551cd \"blk-crypto: add basic hardware-wrapped key support\" (v6.15)",
     ""},
    {"sysfs-key-type-files",
     Kind::behaviour,
     "queue/crypto/ has raw_keys and hw_wrapped_keys",
     {{v(6, 15), kForever}},
     "block/blk-crypto-sysfs.c; e35fde43e25a \"blk-crypto: show supported key types in sysfs\" "
     "(v6.15)",
     ""},
    // ---- fscrypt ----
    {"fscrypt-iv-ino-lblk-32",
     Kind::behaviour,
     "IV_INO_LBLK_32 policies (32-bit DUNs: inode-number hash + logical block, wrapping at 2^32)",
     {{v(5, 8), kForever}},
     "fs/crypto/keysetup.c, fs/crypto/policy.c; e3b1078bedd3 \"fscrypt: add support for "
     "IV_INO_LBLK_32 policies\" (v5.8)",
     ""},
    {"fscrypt-iv-ino-lblk-32-refuses-sub-page-blocks",
     Kind::behaviour,
     "an IV_INO_LBLK_32 policy on a filesystem whose block size is not PAGE_SIZE is EINVAL "
     "(\"with block size != PAGE_SIZE\"); before, it was accepted and its files left to "
     "fs-layer crypto, never inline",
     {{v(7, 3), kForever}},
     "fs/crypto/policy.c supported_iv_ino_lblk_policy() in 7.3.4; 6.12.118 and 6.1.192 accept "
     "the policy and exclude it from inline encryption in fs/crypto/inline_crypt.c "
     "fscrypt_select_encryption_impl() (introducing commit not identified: the lower bound is "
     "the oldest tree read)",
     ""},
    {"fscrypt-data-unit-size-policy",
     Kind::behaviour,
     "a policy may set log2_data_unit_size below the filesystem block size",
     {{v(6, 7), kForever}},
     "fs/crypto/policy.c, fs/crypto/inline_crypt.c; 5b1188847180 \"fscrypt: support crypto data "
     "unit size less than filesystem block size\" (v6.7)",
     ""},
    {"blk-crypto-fallback",
     Kind::behaviour,
     "a mode/data-unit the device lacks falls back to blk-crypto-fallback, logged once per mode as "
     "\"fscrypt: <mode> using blk-crypto-fallback\"",
     {{v(5, 8), kForever}},
     "block/blk-crypto-fallback.c; fs/crypto/inline_crypt.c fscrypt_log_blk_crypto_impl() (the "
     "same message in 6.1.192, 6.12.117 and 7.3.4); 488f6682c832 \"block: blk-crypto-fallback "
     "for Inline Encryption\" (v5.8)",
     ""},
    // ---- hosts ----
    {"ufs-mcq",
     Kind::behaviour,
     "the UFS core runs multi-circular-queue mode on hosts that offer it (QEMU's does)",
     {{v(6, 12, 117), kForever}},
     "drivers/ufs/core/ufs-mcq.c (MCQ core, v6.3) and ufs_qemu_mcq_config_resource() in "
     "drivers/ufs/host/ufshcd-pci.c (6.12.117, 7.3.4); 6.1.192 has neither (QEMU's host is "
     "driven in legacy single-doorbell mode there)",
     ""},
    {"mmc-cqe-write-retry-single-block",
     Kind::behaviour,
     "a failed CQE write is retried in recovery_mode (one block per command)",
     {{v(6, 1, 192), v(6, 2)}, {v(6, 12, 117), v(6, 13)}, {v(7, 3), kForever}},
     "drivers/mmc/core/block.c mmc_blk_cqe_complete_rq(), mmc_blk_data_prep(); c7c6d4f51038 "
     "\"mmc: block: use single block write in retry\" (Cc: stable; in 6.1.192 and 6.12.117)",
     ""},
    {"mmc-cqe-read-retry-single-block",
     Kind::behaviour,
     "a failed CQE read is retried in recovery_mode too",
     {{v(7, 3), kForever}},
     "drivers/mmc/core/block.c mmc_blk_cqe_complete_rq(); d34124edffdb \"mmc: block: Use "
     "MQRQ_XFER_SINGLE_BLOCK for both read and write recovery\" (in 7.3.4; not in 6.12.117, "
     "6.1.192)",
     ""},
    // ---- bugs the suite detects (docs/kernel-bugs.md), each with a fix ----
    {"bug-dm-evict-live-table-only",
     Kind::bug,
     "(a) a key evicted through a dm device is evicted from the live table's devices only; a "
     "device the table left keeps it",
     {{v(5, 12), kForever}},
     "drivers/md/dm-table.c dm_keyslot_evict(); 9355a9eb21a5 \"dm: support key eviction from "
     "keyslot managers of underlying devices\" (v5.12)",
     "0001-dm-evict-inline-crypto-keys-from-devices-that-left-the-table.patch"},
    {"bug-flakey-corrupt-write-drops-crypt-ctx",
     Kind::bug,
     "(b) dm-flakey's write corruption submits a clone without the bio's crypt context "
     "(plaintext reaches the medium)",
     {{v(6, 5), kForever}},
     "drivers/md/dm-flakey.c clone_bio(); 1d9a94389853 \"dm flakey: clone pages on write bio "
     "before corrupting them\" (v6.5; 6.1.192 corrupts the bio's own pages and keeps the "
     "context)",
     "0002-dm-flakey-keep-the-crypt-context-of-a-corrupted-write.patch"},
    {"bug-mmc-recovery-flag-sticky",
     Kind::bug,
     "(c) MQRQ_XFER_SINGLE_BLOCK stays set in the tag's mmc_queue_req, and recovery_mode splits "
     "crypto requests below the data unit",
     {{v(6, 1, 192), v(6, 2)}, {v(6, 12, 117), v(6, 13)}, {v(7, 3), kForever}},
     "drivers/mmc/core/queue.c mmc_mq_queue_rq() (resets retries, not flags), "
     "drivers/mmc/core/block.c mmc_blk_data_prep(); c7c6d4f51038 \"mmc: block: use single block "
     "write in retry\" (writes), d34124edffdb (reads, 7.x)",
     "0003-mmc-core-clear-a-request-s-recovery-flags-when-it-is-first-prepared.patch "
     "0004-mmc-block-do-not-split-inline-encryption-data-units-in-recovery-mode.patch "
     "0005-mmc-core-take-the-DUN-of-a-partly-completed-crypto-request-from-its-bio.patch"},
    {"bug-virtio-console-restore-asks-before-buffers",
     Kind::bug,
     "(d) after a system resume virtio_console asks for the ports' host status before the "
     "control receive queue has buffers, and the answers are lost (outside inline crypto; "
     "icemu's QEMU keeps them, patch 0020)",
     {{v(7, 3), kForever}},
     "drivers/char/virtio_console.c virtcons_restore(): 7.3.4 fills c_ivq after the port loop "
     "that sends PORT_READY (6.12.118 and 6.1.192 fill it first); the commit that moved it is "
     "not identified (a source package has no history), the lower bound is the oldest tree read",
     "0006-virtio_console-ask-for-the-ports-host-status-after-filling-the-control-queue.patch"},
};

const Series* series_of(const Version& ver) {
    for (const auto& s : kSeries) {
        if (s.range.contains(ver)) {
            return &s;
        }
    }
    return nullptr;
}
} // namespace

const std::vector<Rule>& rule_table() {
    return kRules;
}

const std::vector<Series>& supported_series() {
    return kSeries;
}

const Rule& rule(std::string_view name) {
    for (const auto& r : kRules) {
        if (r.name == name) {
            return r;
        }
    }
    throw std::invalid_argument("unknown kernel rule '" + std::string(name) +
                                "' (see models/src/kernel_rules.cpp)");
}

Rules Rules::for_release(std::string_view release, bool with_fixes) {
    Rules r;
    r.version_ = parse_version(release);
    const Series* s = series_of(r.version_);
    if (!s) {
        std::string known;
        for (const auto& k : kSeries) {
            known += (known.empty() ? "" : ", ") + k.range.from.str() +
                     " <= " + std::string(k.name) + ".x < " + k.range.to.str();
        }
        throw std::invalid_argument("no kernel rules for " + std::string(release) +
                                    ": the table covers " + known);
    }
    r.series_ = s->name;
    r.with_fixes_ = with_fixes;
    return r;
}

bool Rules::holds(std::string_view name) const {
    const Rule& r = rule(name);
    if (r.kind == Kind::bug && with_fixes_ && !r.fix.empty()) {
        return false;
    }
    return std::any_of(r.holds.begin(), r.holds.end(),
                       [&](const Range& g) { return g.contains(version_); });
}

namespace {
// Splits `s` at every `sep`; the pieces keep their surrounding blanks (trimmed by term()).
std::vector<std::string_view> split(std::string_view s, std::string_view sep) {
    std::vector<std::string_view> out;
    for (std::size_t at = 0;;) {
        const std::size_t p = s.find(sep, at);
        out.push_back(s.substr(at, p == std::string_view::npos ? std::string_view::npos : p - at));
        if (p == std::string_view::npos) {
            return out;
        }
        at = p + sep.size();
    }
}

// One term: "name" or "!name" with optional blanks around it; returns {negated, name}.
std::pair<bool, std::string_view> term(std::string_view t, std::string_view whole) {
    while (!t.empty() && t.front() == ' ') {
        t.remove_prefix(1);
    }
    while (!t.empty() && t.back() == ' ') {
        t.remove_suffix(1);
    }
    const bool neg = !t.empty() && t[0] == '!';
    if (neg) {
        t.remove_prefix(1);
    }
    if (t.empty() || t.find_first_of(" !&|") != std::string_view::npos) {
        throw std::invalid_argument("bad kernel condition '" + std::string(whole) +
                                    "' (want rule names joined by && and ||, each optionally "
                                    "negated with !, e.g. \"!dm-passthrough-striped\")");
    }
    (void)rule(t); // unknown names throw
    return {neg, t};
}
} // namespace

bool Rules::condition(std::string_view cond) const {
    bool any = false;
    for (auto alt : split(cond, "||")) {
        bool all = true;
        for (auto t : split(alt, "&&")) {
            const auto [neg, name] = term(t, cond);
            all = all && (holds(name) != neg);
        }
        any = any || all;
    }
    return any;
}

std::string Rules::describe() const {
    return version_.str() + (with_fixes_ ? " with fixes" : "");
}

void validate_condition(std::string_view cond) {
    for (auto alt : split(cond, "||")) {
        for (auto t : split(alt, "&&")) {
            (void)term(t, cond);
        }
    }
}

} // namespace icemu::models::kernel
