// The rig of the CQHCI device tests: one QEMU (qtest) with sdhci-pci (cqhci=on, optionally
// crypto=on) and its soldered eMMC backed by an 8 MiB raw image the test can read directly,
// plus helpers shared by test_cqhci*.cpp. Expected ciphertext comes only from the models.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cqhci/host.hpp"
#include "device/rig.hpp"
#include "icemu/models/xts.hpp"

namespace icemu::cqhci_test {

using cqhci::Crypto;

inline constexpr std::size_t kMediumBytes = 8u << 20;

struct EmmcOptions {
    bool cqhci = true;
    bool crypto = false;
    bool emmc = true;
    std::string props; // extra sdhci-pci properties
    bool event_log = false;
    std::string drive_opts; // extra -drive options (e.g. throttling.*)
    std::size_t medium_bytes = kMediumBytes;
    std::vector<std::string> objects; // -object arguments it needs (e.g. a secret)
    std::vector<std::string> trace;   // -trace patterns, written to trace_path()
    std::vector<std::string> devices; // further -device arguments (e.g. a UFS controller)
};

inline EmmcOptions cq_options(bool crypto, std::string props = {}, bool event_log = false) {
    EmmcOptions o;
    o.crypto = crypto;
    o.props = std::move(props);
    o.event_log = event_log;
    return o;
}

inline cqhci::Task task(unsigned tag, bool write, std::uint32_t lba, std::uint16_t blocks,
                        Crypto c = {}, std::uint32_t seg_bytes = 0x10000) {
    cqhci::Task t;
    t.tag = tag;
    t.write = write;
    t.lba = lba;
    t.blocks = blocks;
    t.crypto = c;
    t.seg_bytes = seg_bytes;
    return t;
}

class EmmcRig {
public:
    explicit EmmcRig(const EmmcOptions& o) : dir_("icemu-emmc") {
        // a sparse file: reads as zeroes, costs nothing for a multi-GiB card
        std::ofstream(medium_path(), std::ios::binary | std::ios::trunc).close();
        std::filesystem::resize_file(medium_path(), o.medium_bytes);
        qtest::MachineOptions opts;
        opts.qemu_binary = test::qemu_binary();
        opts.extra_args = {"-m", "256M"};
        std::string dev = "sdhci-pci,id=sd0,addr=5";
        if (o.cqhci) {
            dev += ",cqhci=on";
        }
        if (o.crypto) {
            dev += ",crypto=on";
        }
        if (o.emmc) {
            opts.extra_args.push_back("-drive");
            opts.extra_args.push_back("if=none,id=emmc0,format=raw,file=" + medium_path().string() +
                                      (o.drive_opts.empty() ? "" : "," + o.drive_opts));
            dev += ",emmc-drive=emmc0";
        }
        if (o.event_log) {
            opts.extra_args.push_back("-chardev");
            opts.extra_args.push_back("file,id=clog,path=" + log_path().string());
            dev += ",crypto-log=clog";
        }
        if (!o.props.empty()) {
            dev += "," + o.props;
        }
        for (const auto& obj : o.objects) {
            opts.extra_args.push_back("-object");
            opts.extra_args.push_back(obj);
        }
        for (const auto& t : o.trace) {
            opts.extra_args.push_back("-trace");
            opts.extra_args.push_back(t);
        }
        if (!o.trace.empty()) {
            opts.extra_args.push_back("-D");
            opts.extra_args.push_back(trace_path().string());
        }
        opts.extra_args.push_back("-device");
        opts.extra_args.push_back(dev);
        for (const auto& d : o.devices) {
            opts.extra_args.push_back("-device");
            opts.extra_args.push_back(d);
        }
        machine_ = std::make_unique<qtest::Machine>(opts);
        host_ = std::make_unique<cqhci::CqhciHost>(*machine_);
    }

    qtest::Machine& machine() { return *machine_; }
    cqhci::CqhciHost& host() { return *host_; }
    std::filesystem::path medium_path() const { return dir_ / "emmc.img"; }
    std::filesystem::path log_path() const { return dir_ / "crypto.jsonl"; }
    std::filesystem::path trace_path() const { return dir_ / "trace.log"; }
    // Writes bytes straight into the backing file (for a range QEMU has not touched yet).
    void put_medium(std::uint64_t off, std::span<const std::uint8_t> bytes) const {
        std::fstream f(medium_path(), std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(static_cast<std::streamoff>(off));
        f.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
    }
    std::vector<std::uint8_t> medium(std::uint64_t off, std::size_t len) const {
        std::ifstream f(medium_path(), std::ios::binary);
        f.seekg(static_cast<std::streamoff>(off));
        std::vector<std::uint8_t> out(len);
        f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
        return out;
    }

private:
    qtest::TempDir dir_;
    std::unique_ptr<qtest::Machine> machine_;
    std::unique_ptr<cqhci::CqhciHost> host_;
};

inline std::array<std::uint8_t, 64> cryptokey(std::uint64_t seed) {
    const auto k = test::pattern_bytes(64, seed);
    std::array<std::uint8_t, 64> out{};
    std::copy(k.begin(), k.end(), out.begin());
    return out;
}

inline std::vector<std::uint8_t> model_encrypt(const std::array<std::uint8_t, 64>& key,
                                               std::uint64_t dun, std::size_t du,
                                               const std::vector<std::uint8_t>& plain) {
    const auto xts_key = models::xts_key_from_cryptokey(key, 256);
    return models::xts_encrypt(xts_key, dun, du, plain);
}

} // namespace icemu::cqhci_test
