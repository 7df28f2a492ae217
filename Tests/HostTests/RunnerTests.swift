import Foundation
import Testing
import Host
@testable import Runs
import JSON

/// Interpreter behaviour, observed through the C echo driver and the Swift text driver.
@Suite("Plan runner")
struct RunnerTests {
    func runner(gate: any CallGate = AllowAllGate()) throws -> PlanRunner {
        let dir = Fixtures.tempDir("run")
        try Fixtures.buildEcho(into: dir)
        try Fixtures.installText(into: dir)
        return PlanRunner(registry: DriverRegistry(driversDirectory: dir), gate: gate)
    }

    func plan(_ text: String) throws -> Plan { try Plan.parse(JSONValue.parse(text)) }

    @Test func referencesFlowBetweenSteps() async throws {
        let p = try plan(#"""
        {"inputs": {"who": {"type": "string"}},
         "steps": [
           {"id": "a", "call": "text.join", "input": {"parts": ["hi", "${inputs.who}"]}},
           {"id": "b", "call": "text.upper", "input": {"text": "${steps.a.output.text}!"}},
           {"id": "c", "call": "echo.echo", "input": {"n": "${steps.a.output}", "s": "${steps.b.output.text}"}}],
         "output": {"final": "${steps.c.output.s}", "nested": "${steps.c.output.n.text}"}}
        """#)
        let r = try await runner().run(p, inputs: ["who": "ann"], principal: "t", runId: "r1")
        #expect(r.status == .succeeded)
        #expect(r.output == ["final": "HI ANN!", "nested": "hi ann"])
    }

    @Test func independentStepsOverlap() async throws {
        let p = try plan(#"""
        {"steps": [
          {"id": "s1", "call": "echo.sleep", "input": {"ms": 200}},
          {"id": "s2", "call": "echo.sleep", "input": {"ms": 200}},
          {"id": "after", "call": "echo.echo", "input": {"a": "${steps.s1.output.slept_ms}", "b": "${steps.s2.output.slept_ms}"}}]}
        """#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r2", options: RunOptions(parallelism: 4))
        #expect(r.status == .succeeded)
        // Each sleep started before the other finished: their call intervals overlap.
        let (a, b) = (r.steps[0].attempts[0], r.steps[1].attempts[0])
        #expect(a.startNanos < b.endNanos && b.startNanos < a.endNanos)
        #expect(r.output == ["a": 200, "b": 200])
        // With parallelism 1 they do not overlap.
        let serial = try await runner().run(p, inputs: [:], principal: "t", runId: "r2b", options: RunOptions(parallelism: 1))
        let (c, d) = (serial.steps[0].attempts[0], serial.steps[1].attempts[0])
        #expect(c.endNanos <= d.startNanos || d.endNanos <= c.startNanos)
    }

    /// A diamond (a → b, c → d) resumed with a and b already done: only c and d run, each once,
    /// d after both of its dependencies and with b's restored output; a chain of 50 runs in
    /// order (each step in the run's own task) and its references flow.
    @Test func dependenciesReleaseStepsOnceEach() async throws {
        let p = try plan(#"""
        {"steps": [
          {"id": "a", "call": "echo.echo", "input": {"v": 1}},
          {"id": "b", "call": "echo.echo", "input": {"v": "${steps.a.output.v}"}},
          {"id": "c", "call": "echo.echo", "input": {"v": "${steps.a.output.v}"}},
          {"id": "d", "call": "echo.echo", "input": {"b": "${steps.b.output.v}", "c": "${steps.c.output.v}"}}]}
        """#)
        var options = RunOptions(parallelism: 4)
        options.resume = [StepRecord(id: "a", call: "echo.echo", status: .succeeded, output: ["v": 7]),
                          StepRecord(id: "b", call: "echo.echo", status: .succeeded, output: ["v": 8])]
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r-diamond", options: options)
        #expect(r.status == .succeeded)
        #expect(r.steps.map(\.id) == ["a", "b", "c", "d"])
        #expect(r.steps.map(\.attempts.count) == [0, 0, 1, 1])
        #expect(r.steps[3].output == ["b": 8, "c": 7])
        #expect(r.steps[2].attempts[0].endNanos <= r.steps[3].attempts[0].startNanos)

        var steps: [JSONValue] = [["id": "s0", "call": "echo.echo", "input": ["n": 0]]]
        for k in 1..<50 { steps.append(["id": .string("s\(k)"), "call": "echo.echo", "input": ["n": .string("${steps.s\(k - 1).output.n}")]]) }
        let chain = try Plan.parse(["steps": .array(steps)])
        let c = try await runner().run(chain, inputs: [:], principal: "t", runId: "r-chain", options: RunOptions(parallelism: 4))
        #expect(c.status == .succeeded)
        #expect(c.steps.count == 50 && c.steps.allSatisfy { $0.status == .succeeded && $0.attempts.count == 1 })
        #expect(c.output == ["n": 0])
        for k in 1..<50 { #expect(c.steps[k - 1].attempts[0].endNanos <= c.steps[k].attempts[0].startNanos) }
    }

    /// A step whose input does not resolve fails the run before it starts, and steps already
    /// running are cancelled, as when a step fails during its call. (The sleep is long so that a
    /// loaded machine cannot let it finish first.)
    @Test func anEarlyFailureCancelsTheStepsRunning() async throws {
        let p = try plan(#"""
        {"steps": [
          {"id": "slow", "call": "echo.sleep", "input": {"ms": 120000}},
          {"id": "quick", "call": "echo.echo", "input": {"a": 1}},
          {"id": "bad", "call": "echo.echo", "input": {"x": "${steps.quick.output.no.such.path}"}}]}
        """#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r-early", options: RunOptions(parallelism: 4))
        #expect(r.status == .failed)
        #expect(r.error?.contains("step 'bad'") == true, "\(r.error ?? "")")
        #expect(r.steps.map(\.status) == [.cancelled, .succeeded, .failed])
    }

    @Test func whenFalseSkipsAndContinueGoesOn() async throws {
        let p = try plan(#"""
        {"steps": [
          {"id": "check", "call": "echo.echo", "input": {"ok": false}},
          {"id": "skipped", "call": "echo.echo", "input": {}, "when": "steps.check.output.ok == true"},
          {"id": "fails", "call": "echo.fail", "input": {}, "on_error": "continue"},
          {"id": "after", "call": "echo.echo", "input": {"status": "${steps.fails.status}", "out": "${steps.fails.output}"}}]}
        """#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r3")
        #expect(r.status == .succeeded)
        #expect(r.steps.map(\.status) == [.succeeded, .skipped, .failed, .succeeded])
        #expect(r.output == ["status": "failed", "out": .null])
    }

    @Test func failureStopsTheRun() async throws {
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.fail", "input": {}}, {"id": "b", "call": "echo.echo", "input": {"x": "${steps.a.output}"}}]}"#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r4")
        #expect(r.status == .failed)
        #expect(r.steps.map(\.status) == [.failed, .skipped])
        #expect(r.error?.contains("echo.fail always fails") == true)
    }

    @Test func retriesWithBackoff() async throws {
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.fail", "input": {}, "retry": {"max_attempts": 3, "backoff_ms": 20}}]}"#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r5")
        #expect(r.status == .failed)
        #expect(r.steps[0].attempts.map(\.attempt) == [1, 2, 3])
        #expect(r.steps[0].attempts.allSatisfy { $0.error?.code == "echo_fail" })
    }

    @Test func timeoutBecomesTheDeadline() async throws {
        let p = try plan(#"{"steps": [{"id": "slow", "call": "echo.sleep", "input": {"ms": 60000}, "timeout_ms": 50}]}"#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r6")
        #expect(r.status == .failed)
        #expect(r.steps[0].attempts[0].error?.kind == .deadline)
    }

    @Test func cancelStopsInFlightCalls() async throws {
        let p = try plan(#"{"steps": [{"id": "slow", "call": "echo.sleep", "input": {"ms": 60000}}, {"id": "next", "call": "echo.echo", "input": {"x": "${steps.slow.output}"}}]}"#)
        let run = try runner()
        let task = Task { await run.run(p, inputs: [:], principal: "t", runId: "r7") }
        try await Wait.untilInFlight(run.registry, "echo")
        task.cancel()
        let r = await task.value
        #expect(r.status == .cancelled)
        #expect(r.steps.map(\.status) == [.cancelled, .cancelled])
    }

    @Test func inputIsValidatedAgainstTheToolSchema() async throws {
        let p = try plan(#"{"steps": [{"id": "a", "call": "text.upper", "input": {"text": 42}}]}"#)
        let r = try await runner().run(p, inputs: [:], principal: "t", runId: "r8")
        #expect(r.status == .failed)
        #expect(r.steps[0].reason?.hasPrefix("field 'input': /text") == true)
        #expect(r.steps[0].attempts[0].error?.kind == .invalidArgument)
    }

    @Test func validationNamesStepAndField() async throws {
        func errors(_ text: String) -> [String] {
            do { _ = try plan(text); return [] } catch let e as PlanErrors { return e.errors.map(\.description) } catch { return ["\(error)"] }
        }
        #expect(errors(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": "${steps.zz.output}"}}]}"#)
                == ["step 'a', field 'input.x': ${steps.zz.output} refers to unknown step 'zz'"].map { $0.replacingOccurrences(of: "${steps.zz.output}", with: "steps.zz.output") })
        #expect(errors(#"{"steps": [{"id": "a", "call": "echo.echo", "depends_on": ["b"]}, {"id": "b", "call": "echo.echo", "depends_on": ["a"]}]}"#)
                == ["step 'a', field 'depends_on': dependency cycle: a → b → a"])
        #expect(errors(#"{"steps": [{"id": "a", "call": "echo.echo", "when": 3}]}"#).first?.hasPrefix("step 'a', field 'when': must be a boolean expression") == true)
        #expect(errors(#"{"steps": [{"id": "a", "call": "echoecho"}]}"#) == ["step 'a', field 'call': 'echoecho' is not of the form driver.tool or template:NAME@VERSION"])
        #expect(errors(#"{"steps": [{"id": "a", "call": "echo.echo"}, {"id": "a", "call": "echo.echo"}]}"#) == ["step 'a', field 'id': is used by more than one step"])
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.nope"}, {"id": "b", "call": "ghost.x"}]}"#)
        let problems = try await runner().validate(p).map(\.description)
        #expect(problems.count == 2)
        #expect(problems[0].hasPrefix("step 'a', field 'call': driver 'echo' has no tool 'nope'"))
        #expect(problems[1].hasPrefix("step 'b', field 'call': no driver provides 'ghost'"))
    }

    @Test func whenExpressions() throws {
        struct S: ReferenceScope {
            func input(_ name: String) -> JSONValue? { ["n": 3, "s": "x"][name] }
            func step(_ id: String, field: String) -> JSONValue? { field == "output" ? ["ok": true, "count": 5] : .string("succeeded") }
        }
        func eval(_ s: String) throws -> Bool { try WhenExpression.parse(.string(s)).evaluate(in: S()) }
        #expect(try eval("inputs.n > 2 && steps.a.output.ok"))
        #expect(try eval("!(inputs.s == 'y') || false"))
        #expect(try !eval("steps.a.output.count <= 4"))
        #expect(try eval("${steps.a.status} == \"succeeded\""))
        #expect(throws: PlanError.self) { try eval("inputs.n") }  // not a boolean
        #expect(throws: PlanError.self) { try WhenExpression.parse(.string("inputs.n >")) }
    }

    @Test func yamlPlansAreAccepted() throws {
        let dir = Fixtures.tempDir("yaml")
        Fixtures.write("""
            name: y
            steps:
              - id: a
                call: echo.echo
                input: {n: 1, s: "two", b: true}
            """, to: dir + "/p.yaml")
        let p = try PlanLoader.load(path: dir + "/p.yaml")
        #expect(p.steps[0].input == ["n": 1, "s": "two", "b": true])
    }
}
