/// Moving a data directory of the legacy layout — one `<run_id>.json` per episode with a copy
/// in `_backup/` (`EpisodeFileChain`) — into the log, on the first open by this version.
extension EpisodeSegmentLog {
    /// Migrates legacy episode files, if there are any: the legacy store's own start-up repair
    /// first (a damaged file restored from its backup), then every intact episode appended in
    /// seq order with its stored bytes unchanged (so every hash and link still holds), made
    /// durable in both copies, and only then the files moved to `episodes/_legacy/` (kept, not
    /// deleted). An interrupted migration resumes on the next open: episodes already in the log
    /// are skipped. Returns how many episodes were appended, or nil if there were no legacy files.
    func migrateLegacyFilesLocked() throws -> Int? {
        let backupDir = directory + "/_backup"
        func episodeFiles(_ dir: String) -> [String] {
            guard fs.fileExists(dir), let names = try? fs.listDirectory(dir) else { return [] }
            return names.filter { $0.hasSuffix(".json") && EpisodeFormat.isValidRunId(String($0.dropLast(5))) }
        }
        let primaries = episodeFiles(directory), backups = episodeFiles(backupDir)
        if primaries.isEmpty && backups.isEmpty { return nil }
        let legacy = try EpisodeFileChain(dataDirectory: dataDirectory, fileSystem: fs, openMode: .recover)
        let episodes = try legacy.intactEpisodes()
        _ = try loadIndexLocked(trusting: nil)
        let present = state.withLock { state.index }
        let tip = state.withLock { state.tip }
        let missing = episodes.filter { present[$0.ref.runId] == nil && $0.ref.seq > tip.seq }
        do {
            try appendMigrated(missing)
            try moveAside(primaries, from: directory, to: directory + "/_legacy")
            try moveAside(backups, from: backupDir, to: directory + "/_legacy/_backup")
        } catch let e as EpisodeError {
            throw e
        } catch {
            throw EpisodeError.io(Self.fsError(error, "migrate", directory))
        }
        return missing.count
    }

    /// Appends stored episodes as they are, rotating as needed; both copies fsynced.
    private func appendMigrated(_ episodes: [Episode]) throws {
        var pending: [UInt8] = []
        var start = state.withLock { state.tip }
        var tip = start
        var added: [String: RecordLocation] = [:]
        func flush() throws {
            guard !pending.isEmpty else { return }
            let (p, m) = try openHandles()
            for h in [p, m] {
                try fs.write(h, pending, at: start.offset)
                try fs.fsync(h)
            }
            let (t, a) = (tip, added)
            state.withLock {
                state.tip = t
                state.index.merge(a) { $1 }
            }
            try writeHead(clean: true, tip: t)
            pending = []
            added = [:]
            start = t
        }
        for e in episodes {
            let frame = SegmentFormat.frame(runId: e.ref.runId, seq: e.ref.seq, episode: e.document.canonicalBytes() + [0x0A])
            if tip.segment == 0 || tip.offset + frame.count > currentCapacity() {
                try flush()
                try rotate(to: tip.segment + 1, fitting: frame.count)
                _ = try openHandles()
                tip = state.withLock { state.tip }
                start = tip
            }
            added[e.ref.runId] = RecordLocation(segment: tip.segment, offset: tip.offset, seq: e.ref.seq)
            pending += frame
            tip = LogTip(segment: tip.segment, offset: tip.offset + frame.count, seq: e.ref.seq, hash: e.ref.hash, runId: e.ref.runId)
        }
        try flush()
        closeHandles()
    }

    private func moveAside(_ names: [String], from dir: String, to dest: String) throws {
        guard !names.isEmpty else { return }
        try fs.createDirectory(dest)
        for name in names { try fs.rename(dir + "/" + name, to: dest + "/" + name) }
        try fs.fsyncDirectory(dest)
        try fs.fsyncDirectory(dir)
    }
}
