// System facts (uname, cmdline, every block device with its queue/crypto/ files),
// mkfs via the initramfs' mke2fs or mkfs.f2fs, mount/umount, sync and drop_caches.
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <regex>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ops.hpp"

namespace icemu::guest {

json op_sysinfo(const json&) {
    utsname u{};
    uname(&u);
    return {{"sysname", u.sysname},
            {"release", u.release},
            {"version", u.version},
            {"machine", u.machine},
            {"cmdline", trim(read_text("/proc/cmdline").value_or(""))},
            {"uptime_s", uptime_s()}};
}

static std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = opendir(path.c_str());
    if (!d)
        return out;
    while (dirent* e = readdir(d))
        if (e->d_name[0] != '.')
            out.emplace_back(e->d_name);
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

static json read_num_or_text(const std::string& path) {
    auto t = read_text(path);
    if (!t)
        return nullptr;
    std::string s = trim(*t);
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 0);
    if (!s.empty() && errno == 0 && end && *end == '\0' && s[0] != '0')
        return v;
    if (s == "0")
        return 0;
    return s;
}

// queue/crypto/: null when the directory is absent (no crypto profile at registration).
static json crypto_facts(const std::string& q) {
    std::string dir = q + "/crypto";
    if (access(dir.c_str(), F_OK) != 0)
        return nullptr;
    json c = json::object();
    for (const auto& f : list_dir(dir)) {
        if (f == "modes") {
            json m = json::object();
            for (const auto& mode : list_dir(dir + "/modes"))
                m[mode] = trim(read_text(dir + "/modes/" + mode).value_or(""));
            c["modes"] = m;
        } else {
            c[f] = read_num_or_text(dir + "/" + f);
        }
    }
    return c;
}

static json disk_facts(const std::string& name) {
    std::string sys = "/sys/block/" + name;
    json d = {{"name", name}, {"dev_path", "/dev/" + name}};
    d["dev"] = trim(read_text(sys + "/dev").value_or(""));
    auto sectors = read_num_or_text(sys + "/size");
    d["size_bytes"] = sectors.is_number() ? sectors.get<std::uint64_t>() * 512 : 0;
    d["logical_block_size"] = read_num_or_text(sys + "/queue/logical_block_size");
    d["crypto"] = crypto_facts(sys + "/queue");
    char real[4096];
    ssize_t n = readlink(sys.c_str(), real, sizeof real - 1);
    if (n > 0) {
        real[n] = 0;
        std::string path = real;
        d["sysfs_path"] = path;
        static const std::regex pci_re("[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]");
        static const std::regex hctl_re("^[0-9]+:[0-9]+:[0-9]+:([0-9]+)$");
        std::string pci, comp;
        long lun = -1;
        std::size_t start = 0;
        while (start <= path.size()) {
            std::size_t slash = path.find('/', start);
            comp =
                path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
            std::smatch m;
            if (std::regex_match(comp, pci_re))
                pci = comp;
            else if (std::regex_match(comp, m, hctl_re))
                lun = std::stol(m[1].str());
            if (slash == std::string::npos)
                break;
            start = slash + 1;
        }
        d["pci"] = pci.empty() ? json(nullptr) : json(pci);
        d["lun"] = lun < 0 ? json(nullptr) : json(lun);
    }
    if (auto dm = read_text(sys + "/dm/name"))
        d["dm_name"] = trim(*dm);
    json slaves = json::array();
    for (const auto& s : list_dir(sys + "/slaves"))
        slaves.push_back(s);
    d["slaves"] = slaves;
    return d;
}

json op_disks(const json&) {
    json arr = json::array();
    for (const auto& name : list_dir("/sys/block")) {
        if (name.rfind("loop", 0) == 0 || name.rfind("ram", 0) == 0)
            continue;
        arr.push_back(disk_facts(name));
    }
    return {{"disks", arr}};
}

// Runs argv, returns {exit, output}. Output is stdout+stderr, truncated to 16 KiB.
static std::pair<int, std::string> run(const std::vector<std::string>& argv) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        throw_errno("pipe");
    pid_t pid = fork();
    if (pid < 0)
        throw_errno("fork");
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        std::vector<char*> a;
        for (const auto& s : argv)
            a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execv(a[0], a.data());
        _exit(127);
    }
    close(pipefd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out.size() < 16384)
            out.append(buf, static_cast<std::size_t>(n));
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return {code, out};
}

// mkfs: ext4 with encryption support and a fixed UUID (the models derive per-mode keys from
// it). Args: dev, uuid, features (default "encrypt,stable_inodes"), block_size (4096),
// blocks_per_group (optional), label (optional), extra (array of extra mke2fs arguments).
// F2FS: fstype "f2fs" runs the initramfs' mkfs.f2fs with features (default "encrypt"), uuid,
// label and, for a multi-device filesystem, devices (array: the additional devices, `-c`, in
// order after `dev`, which holds the metadata and is the one to mount); f2fs blocks are 4096
// bytes (block_size must be absent or 4096). Not -q: it silences mkfs.f2fs's errors too (debug
// level -1 drops every MSG(0, ...), e.g. "Error: Different sector sizes!!!"), leaving only the
// exit status 255.
std::vector<std::string> mkfs_f2fs_argv(const json& req, const std::string& dev) {
    if (arg_u64(req, "block_size", 4096) != 4096)
        throw OpError(EINVAL, "mkfs: f2fs blocks are 4096 bytes");
    std::vector<std::string> argv = {"/sbin/mkfs.f2fs", "-f", "-t", "0"};
    argv.insert(argv.end(), {"-O", arg_str(req, "features", "encrypt")});
    std::string uuid = arg_str(req, "uuid", "");
    if (!uuid.empty())
        argv.insert(argv.end(), {"-U", uuid});
    std::string label = arg_str(req, "label", "");
    if (!label.empty())
        argv.insert(argv.end(), {"-l", label});
    if (auto it = req.find("devices"); it != req.end())
        for (const auto& d : *it)
            argv.insert(argv.end(), {"-c", d.get<std::string>()});
    if (auto it = req.find("extra"); it != req.end())
        for (const auto& e : *it)
            argv.push_back(e.get<std::string>());
    argv.push_back(dev);
    return argv;
}

json op_mkfs(const json& req) {
    std::string dev = arg_str(req, "dev");
    std::string fstype = arg_str(req, "fstype", "ext4");
    if (fstype == "f2fs") {
        auto argv = mkfs_f2fs_argv(req, dev);
        auto [code, out] = run(argv);
        if (code != 0)
            throw OpError(EIO, "mkfs.f2fs exited with " + std::to_string(code) + ": " + out);
        json cmd = json::array();
        for (const auto& a : argv)
            cmd.push_back(a);
        return {{"argv", cmd}, {"output", out}};
    }
    if (fstype != "ext4")
        throw OpError(EOPNOTSUPP, "mkfs: fstype is ext4 or f2fs");
    if (req.contains("devices"))
        throw OpError(EINVAL, "mkfs: devices (multi-device) is f2fs only");
    std::vector<std::string> argv = {"/sbin/mke2fs", "-t", "ext4", "-F", "-q"};
    argv.insert(argv.end(), {"-b", std::to_string(arg_u64(req, "block_size", 4096))});
    argv.insert(argv.end(), {"-I", "256"});
    argv.insert(argv.end(), {"-O", arg_str(req, "features", "encrypt,stable_inodes")});
    argv.insert(argv.end(), {"-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0"});
    std::string uuid = arg_str(req, "uuid", "");
    if (!uuid.empty())
        argv.insert(argv.end(), {"-U", uuid});
    if (auto g = arg_u64(req, "blocks_per_group", 0))
        argv.insert(argv.end(), {"-g", std::to_string(g)});
    if (auto it = req.find("extra"); it != req.end())
        for (const auto& e : *it)
            argv.push_back(e.get<std::string>());
    argv.push_back(dev);
    auto [code, out] = run(argv);
    if (code != 0)
        throw OpError(EIO, "mke2fs exited with " + std::to_string(code) + ": " + out);
    json cmd = json::array();
    for (const auto& a : argv)
        cmd.push_back(a);
    return {{"argv", cmd}, {"output", out}};
}

// mount: dev, dir, fstype (ext4), options (e.g. "inlinecrypt"), readonly.
json op_mount(const json& req) {
    std::string dev = arg_str(req, "dev"), dir = arg_str(req, "dir");
    std::string fstype = arg_str(req, "fstype", "ext4");
    std::string opts = arg_str(req, "options", "");
    mkdir_p(dir);
    unsigned long flags = arg_bool(req, "readonly", false) ? MS_RDONLY : 0;
    if (::mount(dev.c_str(), dir.c_str(), fstype.c_str(), flags,
                opts.empty() ? nullptr : opts.c_str()) < 0)
        throw_errno("mount " + dev + " on " + dir + " (" + fstype + ", " + opts + ")");
    // The filesystem's block size (the data-unit size of policies without
    // log2_data_unit_size), for the checker.
    struct statvfs sv {};
    if (::statvfs(dir.c_str(), &sv) == 0)
        return {{"block_size", sv.f_bsize}};
    return json::object();
}

json op_umount(const json& req) {
    std::string dir = arg_str(req, "dir");
    if (::umount2(dir.c_str(), 0) < 0)
        throw_errno("umount " + dir);
    return json::object();
}

json op_sync(const json&) {
    ::sync();
    return json::object();
}

void drop_caches() {
    ::sync();
    write_text("/proc/sys/vm/drop_caches", "3\n");
}

json op_drop_caches(const json&) {
    drop_caches();
    return json::object();
}

// Writing "mem" to /sys/power/state suspends the system to ACPI S3 and returns after the
// resume. QEMU resets every device at the wake-up (pc_machine_wakeup), so the controllers come
// back with empty keyslots. The RTC's wake alarm ends the sleep, so no host action is needed.
// The reply says how long the guest slept (CLOCK_BOOTTIME counts the sleep, CLOCK_MONOTONIC
// does not). Suspend-to-idle ("freeze") is not offered: under QEMU's q35 the RTC alarm never
// woke it.
json op_suspend(const json& req) {
    const std::string state = req.value("state", "mem");
    if (state != "mem")
        throw OpError(EINVAL, "suspend: state must be \"mem\" (ACPI S3), not \"" + state + "\"");
    const int after = req.value("wake_after_s", 3);
    if (after < 1 || after > 600)
        throw OpError(EINVAL, "suspend: wake_after_s must be 1..600");
    const std::string states = trim(read_text("/sys/power/state").value_or(""));
    if ((" " + states + " ").find(" " + state + " ") == std::string::npos)
        throw OpError(EOPNOTSUPP, "suspend: the kernel offers no '" + state +
                                      "' sleep (/sys/power/state: " + states + ")");
    const std::string alarm = "/sys/class/rtc/rtc0/wakealarm";
    if (!read_text(alarm))
        throw OpError(ENOENT, "suspend: no RTC wake alarm at " + alarm +
                                  " (CONFIG_RTC_INTF_SYSFS and a wakeup-capable RTC)");
    write_text(alarm, "0");
    write_text(alarm, "+" + std::to_string(after));
    ::sync();
    const double boot0 = uptime_s(), mono0 = clock_s(CLOCK_MONOTONIC);
    write_text("/sys/power/state", state);
    const double slept = (uptime_s() - boot0) - (clock_s(CLOCK_MONOTONIC) - mono0);
    return {{"state", state}, {"wake_after_s", after}, {"seconds_asleep", slept}};
}

namespace {

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    if (!::realpath(p.c_str(), buf))
        throw OpError(errno, "runtime_pm: " + p + ": " + std::strerror(errno));
    return buf;
}

} // namespace

// Runtime PM of the UFS host under "dev" (a block device of one of its LUs): rpm_lvl "level"
// (0-6, ufshcd's levels: 3 = device sleep + link hibern8, 5 = device power-down + link off),
// then every SCSI device of that host (the LUs and well-known LUs) to power/control "auto" with
// a 0 ms autosuspend delay, and wait until the host's runtime status is "suspended" (its next
// I/O resumes it). "allow": false instead sets every power/control back to "on" (which resumes
// them and keeps them resumed). Replies with the host's PCI address, the level and its target
// device and link states, the status reached and how long it took.
json op_runtime_pm(const json& req) {
    const std::string dev = arg_str(req, "dev");
    const bool allow = arg_bool(req, "allow", true);
    const std::string name = dev.substr(dev.rfind('/') + 1);
    std::string host = real_path("/sys/class/block/" + name + "/device");
    while (host.size() > 1 && !read_text(host + "/rpm_lvl"))
        host = host.substr(0, host.rfind('/'));
    if (host.size() <= 1)
        throw OpError(ENODEV, "runtime_pm: " + dev + " is not on a UFS host (no rpm_lvl above it)");
    std::vector<std::string> sdevs;
    for (const auto& e : list_dir("/sys/class/scsi_device")) {
        const std::string d = real_path("/sys/class/scsi_device/" + e + "/device");
        if (d.rfind(host + "/", 0) == 0)
            sdevs.push_back(d);
    }
    const auto attr = [&host](const char* file) {
        return trim(read_text(host + "/" + file).value_or(""));
    };
    json out = {{"host", host.substr(host.rfind('/') + 1)}, {"scsi_devices", sdevs.size()}};
    const double t0 = uptime_s();
    if (!allow) {
        for (const auto& d : sdevs)
            write_text(d + "/power/control", "on");
        out["status"] = attr("power/runtime_status");
        return out;
    }
    const std::uint64_t level = arg_u64(req, "level");
    if (level > 6)
        throw OpError(EINVAL, "runtime_pm: level must be 0..6 (ufshcd's rpm_lvl)");
    const std::uint64_t wait_s = arg_u64(req, "wait_s", 20);
    write_text(host + "/rpm_lvl", std::to_string(level));
    for (const auto& d : sdevs) {
        if (read_text(d + "/power/autosuspend_delay_ms"))
            write_text(d + "/power/autosuspend_delay_ms", "0");
        write_text(d + "/power/control", "auto");
    }
    std::string status;
    while ((status = attr("power/runtime_status")) != "suspended" &&
           uptime_s() - t0 < static_cast<double>(wait_s))
        ::usleep(20000);
    out["level"] = level;
    out["rpm_target_dev_state"] = attr("rpm_target_dev_state");
    out["rpm_target_link_state"] = attr("rpm_target_link_state");
    out["status"] = status;
    out["seconds"] = uptime_s() - t0;
    if (status != "suspended")
        throw OpError(ETIMEDOUT, "runtime_pm: the host " + out["host"].get<std::string>() +
                                     " is still " + status + " after " + std::to_string(wait_s) +
                                     " s");
    return out;
}

} // namespace icemu::guest
