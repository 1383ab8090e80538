import XCTest
import Foundation
import EpipeTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A one-node Slurm cluster on localhost for the tests of examples/slurm: its own munged (as the
/// munge user, a private key and socket), slurmctld and slurmd (foreground, as root), with every
/// file (slurm.conf, state, spool, logs, pid files) in a throw-away folder and both daemons bound
/// to 127.0.0.1 on free ports. Every Slurm command the test runs gets `env` (SLURM_CONF), so
/// nothing reads /etc/slurm. `stop()` cancels what is left, ends the three daemons it started
/// (SIGTERM, then SIGKILL) and removes the folder.
///
/// Not root, or Slurm/MUNGE not installed (`make engines` installs slurm-wlm and munge as root):
/// `start` throws XCTSkip saying so. Anything else that goes wrong is a failure, with the logs.
final class SlurmCluster: @unchecked Sendable {
    let dir: String
    let conf: String
    let ctldPort: Int, slurmdPort: Int
    let cpus: Int, memoryMB: Int
    let tools: [String: String]
    private var daemons: [Daemon] = []

    /// A daemon this cluster started, reaped by waitpid here.
    final class Daemon {
        let name: String, pid: pid_t
        var status: Int32?
        init(name: String, pid: pid_t) { self.name = name; self.pid = pid }
        var isRunning: Bool {
            if status != nil { return false }
            var st: Int32 = 0
            let r = waitpid(pid, &st, WNOHANG)
            if r == pid { status = st; return false }
            if r < 0 { status = -1; return false }
            return true
        }
    }

    var env: [String: String] { ["SLURM_CONF": conf] }
    static let sbin = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"]

    /// Finds the programs, writes slurm.conf, starts munged, slurmctld and slurmd, and returns
    /// once `sinfo` shows the node idle (up to `timeout` seconds).
    static func start(timeout: Double = 60) throws -> SlurmCluster {
        guard getuid() == 0 else { throw XCTSkip("the one-node Slurm cluster runs slurmd as root (SlurmUser=root); not root here") }
        var tools: [String: String] = [:]
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for t in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "setpriv"] {
            guard let p = (sbin + path).map({ $0 + "/" + t }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                throw XCTSkip("\(t) not found: Slurm and MUNGE are not installed (`make engines` installs slurm-wlm and munge with apt-get as root)")
            }
            tools[t] = p
        }
        tools["mungekey"] = (sbin + path).map { $0 + "/mungekey" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let munge = getpwnam("munge") else { throw XCTSkip("no munge user (is the munge package installed? `make engines`)") }
        let (mungeUID, mungeGID) = (munge.pointee.pw_uid, munge.pointee.pw_gid)

        // What slurmd will find on this node (it refuses a RealMemory above it), less a margin,
        // and never above what is free now.
        let probe = try exec(tools["slurmd"]!, ["-C"])
        func field(_ k: String) -> Int? {
            probe.out.split(whereSeparator: { $0 == " " || $0 == "\n" }).first { $0.hasPrefix(k + "=") }.flatMap { Int($0.dropFirst(k.count + 1)) }
        }
        let cpus = field("CPUs") ?? ProcessInfo.processInfo.activeProcessorCount
        var mem = field("RealMemory") ?? 4096
        if let avail = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8))?.split(separator: "\n")
            .first(where: { $0.hasPrefix("MemAvailable:") })?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            mem = min(mem, avail / 1024)
        }
        mem = max(512, mem * 9 / 10)

        let ports = try freePortPair()
        let dir = NSTemporaryDirectory() + "epipe-slurm-" + UUID().uuidString.prefix(8)
        let c = SlurmCluster(dir: dir, ports: ports, cpus: cpus, memoryMB: mem, tools: tools)
        do {
            try c.prepare(mungeUID: mungeUID, mungeGID: mungeGID)
            try c.launch(timeout: timeout)
        } catch {
            let logs = c.logs()
            c.stop()
            if error is XCTSkip { throw error }
            throw SlurmError("the one-node Slurm cluster did not start: \(error)\n\(logs)")
        }
        return c
    }

    private init(dir: String, ports: (Int, Int), cpus: Int, memoryMB: Int, tools: [String: String]) {
        self.dir = dir
        conf = dir + "/slurm.conf"
        (ctldPort, slurmdPort) = ports
        self.cpus = cpus; self.memoryMB = memoryMB; self.tools = tools
    }

    private func prepare(mungeUID: uid_t, mungeGID: gid_t) throws {
        let fm = FileManager.default
        for d in ["", "/state", "/spool", "/log", "/munge"] {
            try fm.createDirectory(atPath: dir + d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        // munged insists: its folder its own and not writable by others, the key its own and 0600.
        let key = dir + "/munge/munge.key"
        if let mk = tools["mungekey"] {
            let r = try exec(mk, ["--create", "--keyfile=" + key])
            guard r.code == 0 else { throw SlurmError("mungekey --create failed: \(r.err)") }
        } else {
            var g = SystemRandomNumberGenerator()
            try Data((0..<1024).map { _ in UInt8.random(in: 0...255, using: &g) }).write(to: URL(fileURLWithPath: key))
        }
        for p in [dir + "/munge", key] { guard chown(p, mungeUID, mungeGID) == 0 else { throw SlurmError("chown munge \(p): errno \(errno)") } }
        chmod(key, 0o600)

        let conf = """
        # A one-node cluster on localhost for epipe's EnginesTests; everything under \(dir).
        ClusterName=epipetest
        SlurmctldHost=localhost(127.0.0.1)
        SlurmctldPort=\(ctldPort)
        SlurmdPort=\(slurmdPort)
        # bind to 127.0.0.1 only, not every address
        CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
        SlurmUser=root
        SlurmdUser=root
        AuthType=auth/munge
        CredType=cred/munge
        AuthInfo=socket=\(dir)/munge/munge.socket
        StateSaveLocation=\(dir)/state
        SlurmdSpoolDir=\(dir)/spool
        SlurmctldPidFile=\(dir)/slurmctld.pid
        SlurmdPidFile=\(dir)/slurmd.pid
        SlurmctldLogFile=\(dir)/log/slurmctld.log
        SlurmdLogFile=\(dir)/log/slurmd.log
        SlurmctldDebug=info
        SlurmdDebug=info
        MailProg=/bin/true
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_CPU_Memory
        SchedulerType=sched/builtin
        MpiDefault=none
        SwitchType=switch/none
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        JobCompType=jobcomp/none
        ReturnToService=2
        # finished jobs stay visible to scontrol for the test's checks
        MinJobAge=900
        SlurmctldTimeout=30
        SlurmdTimeout=60
        NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=\(cpus) RealMemory=\(memoryMB) State=UNKNOWN
        PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP

        """
        try conf.write(toFile: self.conf, atomically: true, encoding: .utf8)
    }

    private func launch(timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        try spawn("munged", tools["setpriv"]!, ["--reuid=munge", "--regid=munge", "--init-groups", "--", tools["munged"]!, "--foreground",
                                                "--socket=\(dir)/munge/munge.socket", "--key-file=\(dir)/munge/munge.key",
                                                "--seed-file=\(dir)/munge/munged.seed", "--log-file=\(dir)/munge/munged.log",
                                                "--pid-file=\(dir)/munge/munged.pid"])
        try waitFor("munged's socket", until: deadline) { FileManager.default.fileExists(atPath: self.dir + "/munge/munge.socket") }
        try spawn("slurmctld", tools["slurmctld"]!, ["-D", "-i", "-f", conf])
        try waitFor("slurmctld to answer", until: deadline) { (try? self.slurm("scontrol", ["ping"]))?.out.contains("is UP") == true }
        try spawn("slurmd", tools["slurmd"]!, ["-D", "-N", "localhost", "-f", conf])
        try waitFor("the node to be idle in sinfo", until: deadline) {
            let s = (try? self.slurm("sinfo", ["-h", "-N", "-o", "%N %t"]))?.out ?? ""
            return s.contains("localhost idle")
        }
    }

    /// Starts a daemon with posix_spawn, not Foundation's Process: Process notices a child's end
    /// when a socket the child inherited closes, and slurmctld closes every descriptor it did not
    /// open at start, after which Process waits on it (blocking) and reaps no other child again.
    /// Output to log/NAME.out, no inherited descriptors, its own session, default signals.
    private func spawn(_ name: String, _ exe: String, _ args: [String]) throws {
        let log = dir + "/log/\(name).out"
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        // glibc's posix_spawn_file_actions_addclosefrom_np (2.34+), not in Swift's Glibc module
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(sym, to: CloseFrom.self)(&fa, 3)
        } else {
            let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
            for fd in open where fd > 2 && fcntl(fd, F_GETFD) >= 0 { posix_spawn_file_actions_addclose(&fa, fd) }
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none); sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        let setsid: Int32 = 0x80  // glibc's POSIX_SPAWN_SETSID
        posix_spawnattr_setflags(&attr, Int16(setsid | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var e = ProcessInfo.processInfo.environment
        e["SLURM_CONF"] = conf
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = e.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &fa, &attr, argv, envp)
        guard rc == 0 else { throw SlurmError("could not start \(name) (\(exe)): \(String(cString: strerror(rc)))") }
        daemons.append(Daemon(name: name, pid: pid))
    }

    private func waitFor(_ what: String, until deadline: Date, _ ok: () -> Bool) throws {
        while Date() < deadline {
            if ok() { return }
            if let gone = daemons.first(where: { !$0.isRunning }) {
                throw SlurmError("\(gone.name) exited (wait status \(gone.status ?? -1)) while waiting for \(what)")
            }
            Thread.sleep(forTimeInterval: 0.25)
        }
        throw SlurmError("timed out waiting for \(what)")
    }

    /// A Slurm client command against this cluster.
    @discardableResult
    func slurm(_ tool: String, _ args: [String], extraEnv: [String: String] = [:]) throws -> RunResult {
        try exec(tools[tool] ?? tool, args, env: env.merging(extraEnv) { $1 })
    }

    /// Each job's (array task's) id and state, from scontrol (finished ones included: MinJobAge).
    func states(_ ids: [String]) throws -> [(id: String, state: String, exit: String)] {
        var out: [(String, String, String)] = []
        for id in ids {
            let r = try slurm("scontrol", ["show", "job", "-o", id])
            for line in r.lines {
                let f = Dictionary(line.split(separator: " ").compactMap { kv -> (String, String)? in
                    guard let eq = kv.firstIndex(of: "=") else { return nil }
                    return (String(kv[..<eq]), String(kv[kv.index(after: eq)...]))
                }, uniquingKeysWith: { a, _ in a })
                let task = f["ArrayTaskId"].map { "\(f["ArrayJobId"] ?? id)_\($0)" } ?? (f["JobId"] ?? id)
                out.append((task, f["JobState"] ?? "?", f["ExitCode"] ?? "?"))
            }
        }
        return out
    }

    /// The last lines of every daemon log, for a failure message.
    func logs(lines: Int = 40) -> String {
        // munged writes its log as the munge user, in its own folder
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/log")) ?? []).sorted().map { dir + "/log/" + $0 }
            + [dir + "/munge/munged.log"]
        return files.filter { FileManager.default.fileExists(atPath: $0) }.map { f -> String in
            let text = (try? String(contentsOfFile: f, encoding: .utf8)) ?? ""
            return "--- \(f) (last \(lines) lines)\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// Cancels any job left, ends the daemons this cluster started, removes its folder.
    func stop() {
        if daemons.contains(where: { $0.name == "slurmctld" && $0.isRunning }) {
            _ = try? slurm("scancel", ["--full", "-u", "root"])
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline, let q = try? slurm("squeue", ["-h"]), q.code == 0, !q.out.isEmpty { Thread.sleep(forTimeInterval: 0.5) }
        }
        // slurmd, slurmctld, then munged (which both need until they are gone)
        for d in daemons.reversed() where d.isRunning {
            kill(d.pid, SIGTERM)
            let deadline = Date().addingTimeInterval(15)
            while d.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if d.isRunning { kill(d.pid, SIGKILL); var st: Int32 = 0; waitpid(d.pid, &st, 0); d.status = st }
        }
        daemons = []
        try? FileManager.default.removeItem(atPath: dir)
    }

    deinit { stop() }

    /// 16817/16818 when both are free on 127.0.0.1, else another free pair nearby.
    static func freePortPair() throws -> (Int, Int) {
        var candidates = [16817]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<200 { candidates.append(Int.random(in: 16000...16998, using: &g)) }
        for p in candidates where portFree(p) && portFree(p + 1) { return (p, p + 1) }
        throw SlurmError("no two free ports next to each other in 16000-16999 on 127.0.0.1")
    }

    /// 127.0.0.1:`port` can be bound now.
    static func portFree(_ port: Int) -> Bool { SeaweedFS.bindPort(port) != nil }
}

struct SlurmError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
