#include "rig.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#ifndef ICEMU_QEMU_PATH
#define ICEMU_QEMU_PATH ""
#endif

namespace icemu::test {

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return (v != nullptr && *v != '\0') ? std::stoull(v, nullptr, 0) : fallback;
}

std::string qemu_binary() {
    const char* env = std::getenv("ICEMU_QEMU");
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return ICEMU_QEMU_PATH;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (cond()) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(poll);
    }
}

qtest::MachineOptions bare_machine() {
    qtest::MachineOptions o;
    o.qemu_binary = qemu_binary();
    o.extra_args = {"-m", "64M"};
    o.timeout = std::chrono::milliseconds(20000);
    return o;
}

std::string changed_blocks(const std::vector<std::uint8_t>& before,
                           const std::vector<std::uint8_t>& after) {
    if (before.size() != after.size()) {
        return "medium size changed";
    }
    std::string out;
    constexpr std::size_t kBlock = 4096;
    for (std::size_t b = 0; b * kBlock < before.size(); ++b) {
        const auto off = static_cast<std::ptrdiff_t>(b * kBlock);
        const auto n = static_cast<std::ptrdiff_t>(std::min(kBlock, before.size() - b * kBlock));
        if (!std::equal(before.begin() + off, before.begin() + off + n, after.begin() + off)) {
            out += (out.empty() ? "changed blocks: " : ", ") + std::to_string(b);
        }
    }
    return out;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::uint8_t> pattern_bytes(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> out(n);
    for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t v = rng();
        for (std::size_t j = 0; j < 8 && i + j < n; ++j) {
            out[i + j] = static_cast<std::uint8_t>(v >> (8 * j));
        }
    }
    return out;
}

Rig::Rig(std::vector<ControllerSpec> controllers, bool enable)
    : specs_(std::move(controllers)), dir_("icemu-rig") {
    qtest::MachineOptions opts;
    opts.qemu_binary = qemu_binary();
    opts.extra_args = {"-m", "256M"};
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const auto& s = specs_[i];
        std::string dev = "ufs,id=" + s.id + ",serial=icemu" + std::to_string(i) +
                          ",addr=" + std::to_string(4 + i);
        if (s.mcq) {
            dev += ",mcq=true,mcq-maxq=1";
        }
        if (!s.props.empty()) {
            dev += "," + s.props;
        }
        if (s.event_log) {
            const std::string chr = "clog" + std::to_string(i);
            opts.extra_args.push_back("-chardev");
            opts.extra_args.push_back("file,id=" + chr + ",path=" + log_path(i).string());
            dev += ",crypto-log=" + chr;
        }
        for (const auto& o : s.objects) {
            opts.extra_args.push_back("-object");
            opts.extra_args.push_back(o);
        }
        for (const auto& t : s.trace) {
            opts.extra_args.push_back("-trace");
            opts.extra_args.push_back(t);
        }
        if (!s.trace.empty()) {
            opts.extra_args.push_back("-D");
            opts.extra_args.push_back(trace_path().string());
        }
        opts.extra_args.push_back("-device");
        opts.extra_args.push_back(dev);
        for (const auto& lu : s.lus) {
            const auto path = medium_path(i, lu.lun);
            {
                std::ofstream f(path, std::ios::binary | std::ios::trunc);
                const std::vector<char> block(65536, static_cast<char>(lu.fill));
                for (std::size_t done = 0; done < lu.bytes; done += block.size()) {
                    f.write(block.data(),
                            static_cast<std::streamsize>(std::min(block.size(), lu.bytes - done)));
                }
            }
            const std::string drive = s.id + "-lu" + std::to_string(lu.lun);
            opts.extra_args.push_back("-drive");
            opts.extra_args.push_back("if=none,id=" + drive + ",file=" + path.string() +
                                      ",format=raw");
            opts.extra_args.push_back("-device");
            opts.extra_args.push_back("ufs-lu,bus=" + s.id + ",lun=" + std::to_string(lu.lun) +
                                      ",drive=" + drive);
        }
    }
    machine_ = std::make_unique<qtest::Machine>(opts);

    ufs::PciConfig pci(*machine_);
    // pci-identity=intel-mtl controllers enumerate as Intel's Meteor Lake UFS host.
    const bool intel =
        !specs_.empty() && specs_.front().props.find("pci-identity=intel-mtl") != std::string::npos;
    const auto fns =
        intel ? pci.find(0x8086, 0x7e47) : pci.find(ufs::kRedHatVendor, ufs::kUfsDevice);
    if (fns.size() != specs_.size()) {
        throw qtest::Error("found " + std::to_string(fns.size()) + " UFS controllers, expected " +
                           std::to_string(specs_.size()));
    }
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        ufs::HostConfig hc;
        hc.queue = specs_[i].mcq ? ufs::QueueMode::mcq : ufs::QueueMode::legacy;
        hc.bar_addr = 0xe0000000ull + 0x100000ull * i;
        hc.ram_base = 0x01000000ull * (i + 1);
        hc.cge = specs_[i].cge;
        hosts_.push_back(std::make_unique<ufs::UfsHost>(*machine_, fns[i], hc));
    }
    if (enable) {
        for (std::size_t i = 0; i < specs_.size(); ++i) {
            bring_up(i);
        }
    }
}

void Rig::bring_up(std::size_t i) {
    host(i).enable();
    for (const auto& lu : specs_.at(i).lus) {
        host(i).wait_unit_ready(lu.lun);
    }
}

std::filesystem::path Rig::medium_path(std::size_t ctrl, std::uint8_t lun) const {
    return dir_ / ("ufs" + std::to_string(ctrl) + "-lu" + std::to_string(lun) + ".img");
}

std::vector<std::uint8_t> Rig::medium(std::size_t ctrl, std::uint8_t lun, std::uint64_t offset,
                                      std::size_t len) const {
    std::ifstream f(medium_path(ctrl, lun), std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    std::vector<std::uint8_t> out(len);
    f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(len));
    if (static_cast<std::size_t>(f.gcount()) != len) {
        throw qtest::Error("short read from the backing file");
    }
    return out;
}

std::vector<std::uint8_t> Rig::whole_medium(std::size_t ctrl, std::uint8_t lun) const {
    const auto size = std::filesystem::file_size(medium_path(ctrl, lun));
    return medium(ctrl, lun, 0, size);
}

std::filesystem::path Rig::log_path(std::size_t ctrl) const {
    return dir_ / ("ufs" + std::to_string(ctrl) + "-crypto.jsonl");
}

std::vector<models::events::Event> Rig::log_events(std::size_t ctrl) const {
    if (!std::filesystem::exists(log_path(ctrl))) {
        return {};
    }
    return models::events::read_log_file(log_path(ctrl).string());
}

} // namespace icemu::test
