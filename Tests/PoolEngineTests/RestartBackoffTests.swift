import Testing

@testable import PoolEngine

@Suite("Restart backoff and durations")
struct RestartBackoffTests {
    @Test("delays grow by the factor from the initial value and stop at the cap")
    func growth() {
        let backoff = RestartBackoff(initial: .milliseconds(50), factor: 3, maximum: .seconds(1), resetAfter: .seconds(1))
        let delays = (0..<6).map { backoff.delay(afterRapidExits: $0, isBootFailure: false) }
        #expect(delays == [.zero, .milliseconds(50), .milliseconds(150), .milliseconds(450), .seconds(1), .seconds(1)])
    }

    @Test("a boot failure always waits at least the initial delay")
    func bootFailureFloor() {
        let backoff = RestartBackoff.standard
        #expect(backoff.delay(afterRapidExits: 0, isBootFailure: true) == .milliseconds(100))
    }

    @Test("durations parse with every unit and refuse what is not one", arguments: [
        ("250ms", Duration.milliseconds(250)), ("10s", .seconds(10)), ("5m", .seconds(300)),
        ("1h", .seconds(3600)), ("1.5s", .milliseconds(1500)), ("0", .zero), ("750us", .microseconds(750)),
    ])
    func parse(text: String, expected: Duration) {
        #expect(DurationParser.parse(text) == expected)
    }

    @Test("non-durations are refused", arguments: ["10", "fast", "-1s", "s", "1d", ""])
    func refuse(text: String) {
        #expect(DurationParser.parse(text) == nil)
    }
}
