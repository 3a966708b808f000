import ArgumentParser
import Foundation
import ImprintCore
#if canImport(Glibc)
import Glibc
#endif

extension ImprintCommand {
    struct Pipeline: ParsableCommand, LiveOutput {
        static let configuration = CommandConfiguration(
            commandName: "pipeline",
            abstract: "Run a pipeline of steps as a DAG, with chain of custody and content-addressed skipping.",
            discussion: """
            Reads FILE (YAML): steps with run (a /bin/sh -c command), inputs, outputs, needs, env (a mapping sets \
            variables, a list passes them through), timeout (30s, 5m), cache (true/false) and exclude \
            (.dockerignore syntax). Steps run in the current directory; independent steps run side by side.

            Chain of custody: an input that an earlier step produced must still have the bytes that step recorded; \
            a difference stops the pipeline, naming the path, both digests and both steps. A step with cache: true \
            is skipped when a recorded successful run had the same materials, command and environment and its \
            products are present and byte-identical.

            Each step that ran leaves RECORD_DIR/NAME.json (schemas/step-record.schema.json); the run is written to \
            RECORD_DIR/pipeline-run.json and, with --format json, to stdout (schemas/pipeline-run.schema.json). With \
            $GITHUB_STEP_SUMMARY set, a Markdown table is appended to it.

            Examples:
              imprint pipeline                       # ci/pipeline.yml
              imprint pipeline ci/pipeline.yml --step test --jobs 1
              imprint pipeline --keep-going --no-cache --format json > run.json
              imprint pipeline --attest ../out/links --key imprint.key    # then: in-toto-verify --link-dir ../out/links

            Exit status: 0 every step succeeded or was cached; 1 a step failed, timed out, left a declared output \
            out or broke the chain of custody; 2 the pipeline file is invalid (YAML with line and column, unknown \
            keys, a needs cycle); 128 + N when interrupted by signal N (running steps are recorded as interrupted).
            """
        )

        @Argument(help: "The pipeline file.", completion: .file(extensions: ["yml", "yaml"])) var file: String = "ci/pipeline.yml"
        @Option(name: .shortAndLong, help: "Steps to run at once (default: the number of cores).") var jobs: Int?
        @Flag(help: "After a step fails, keep running the steps that do not depend on it.") var keepGoing = false
        @Flag(help: "Run every step even when a cached run would do.") var noCache = false
        @Option(help: "Run only this step and the steps it needs.") var step: String?
        @Option(help: "Where step records are written and looked up.", completion: .directory) var recordDir: String = ".imprint/steps"
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var attest: StepAttestFlags
        @Flag(name: .shortAndLong, help: "Do not print the steps' output (it is still hashed and recorded).") var quiet = false

        func validate() throws {
            if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        }

        func run() throws {
            var status: Int32 = 0
            try runReportingErrors {
                let pipeline = try PipelineFile.load(file)
                for w in pipeline.warnings() { Console.err("imprint: warning: \(w)") }
                var options = PipelineRunner.Options()
                options.jobs = jobs ?? ProcessInfo.processInfo.activeProcessorCount
                options.keepGoing = keepGoing
                options.noCache = noCache
                options.target = step
                options.recordDir = recordDir
                options.attestor = try attest.attestor()
                let printer = PipelinePrinter(toStderr: output.json, quiet: quiet)
                let runner = PipelineRunner(file: pipeline, options: options, sinks: try FileStepRecordSink.standardSinks(recordDir: recordDir), observer: printer)
                printer.runner = runner
                let forwarder = SignalForwarder { sig in
                    printer.note("imprint: \(signalName(sig)) received: stopping running steps")
                    runner.interrupt(sig)
                }
                printer.startProgress(total: try pipeline.selection(step).count)
                let result = try runner.run()
                printer.stopProgress()
                withExtendedLifetime(forwarder) {}
                if let warning = result.save(recordDir: recordDir) { Console.err("imprint: warning: \(warning)") }
                printer.table(result)
                GitHubStepSummary.append(gitHubSummary(result))
                if output.json { Console.outRaw(result.jsonBytes()) }
                status = result.exitStatus
            }
            try conclude(status)
        }
    }
}
