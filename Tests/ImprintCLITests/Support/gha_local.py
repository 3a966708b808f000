#!/usr/bin/env python3
"""Runs a GitHub Actions workflow's jobs on this machine the way a hosted runner runs them, for tests.

usage: gha_local.py WORKFLOW --workspace DIR --action NAME=DIR [--env K=V ...]

What a runner provides is provided: GITHUB_WORKSPACE, RUNNER_TEMP, GITHUB_SHA, GITHUB_OUTPUT (read back into
steps.ID.outputs), GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH for composite actions; `run`
steps go through `bash -e` (`bash --noprofile --norc -eo pipefail` for `shell: bash`); `${{ }}` expressions over
steps, needs, inputs, env, runner and github are substituted; jobs run in `needs` order and a failing step fails
its job (and the run, exit 1). `uses:` of the action named NAME runs the composite action in DIR;
actions/checkout (the workspace is already the checkout) and actions/upload-artifact (the paths must exist) are
stood in for. Prints {"jobs": {JOB: {"outputs": {...}, "summary": "..."}}} on stdout.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Failed(Exception):
    pass


def lookup(expr, ctx):
    expr = expr.strip()
    m = re.fullmatch(r"(.+?)\s*(==|!=)\s*'([^']*)'", expr)
    if m:
        value = lookup(m.group(1), ctx)
        return (value == m.group(3)) == (m.group(2) == "==")
    parts = expr.split(".")
    node = ctx
    for p in parts:
        if not isinstance(node, dict) or p not in node:
            if parts[0] in ("steps", "needs", "inputs", "env") and len(parts) > 1:
                return ""
            raise Failed("unsupported expression: ${{ %s }}" % expr)
        node = node[p]
    return node


def substitute(text, ctx):
    if text is None:
        return ""
    return EXPR.sub(lambda m: str(lookup(m.group(1), ctx)), str(text))


def condition(text, ctx):
    if text is None:
        return True
    inner = EXPR.fullmatch(str(text).strip())
    value = lookup(inner.group(1) if inner else str(text), ctx)
    return bool(value)


def read_kv(path):
    """GITHUB_OUTPUT / GITHUB_ENV: NAME=value lines and NAME<<DELIM heredocs."""
    out = {}
    if not os.path.exists(path):
        return out
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


class Runner:
    def __init__(self, workspace, actions, extra_env):
        self.workspace = workspace
        self.actions = actions
        self.extra_env = extra_env
        self.temp = tempfile.mkdtemp(prefix="gha-runner-")
        self.sha = extra_env.get("GITHUB_SHA", "0" * 40)

    def run_shell(self, script, shell, env, job):
        path = os.path.join(self.temp, "step.sh")
        with open(path, "w") as f:
            f.write(script)
        cmd = ["bash", "--noprofile", "--norc", "-eo", "pipefail", path] if shell == "bash" else ["bash", "-e", path]
        full = dict(os.environ)
        full.update(env)
        full["PATH"] = ":".join(job["path"] + [full.get("PATH", "/usr/bin:/bin")])
        # Step output is log output: stderr, so stdout carries only the result.
        return subprocess.run(cmd, cwd=self.workspace, env=full, stdout=sys.stderr).returncode

    def step_env(self, job, step_ctx, env_blocks):
        env = dict(self.extra_env)
        env.update(job["env"])
        for block in env_blocks:
            for k, v in (block or {}).items():
                env[k] = substitute(v, step_ctx)
        env.update({"GITHUB_WORKSPACE": self.workspace, "RUNNER_TEMP": self.temp, "GITHUB_SHA": self.sha,
                    "GITHUB_ACTIONS": "true", "CI": "true", "RUNNER_OS": "Linux",
                    "GITHUB_STEP_SUMMARY": job["summary"]})
        return env

    def run_steps(self, steps, job, ctx, env_blocks, action_path=None):
        """Runs steps; returns their outputs by id. ctx is the expression context (steps filled in as we go)."""
        ctx.setdefault("steps", {})
        for step in steps:
            name = step.get("name") or step.get("uses") or step.get("run", "").split("\n")[0]
            if not condition(step.get("if"), ctx):
                print("gha_local: skip: %s" % name, file=sys.stderr)
                continue
            print("gha_local: step: %s" % substitute(name, ctx), file=sys.stderr)
            outputs_file = os.path.join(self.temp, "output-%d" % len(os.listdir(self.temp)))
            envfile = os.path.join(self.temp, "env")
            pathfile = os.path.join(self.temp, "path")
            for p in (outputs_file, envfile, pathfile):
                open(p, "w").close()
            env = self.step_env(job, ctx, env_blocks + [step.get("env")])
            env.update({"GITHUB_OUTPUT": outputs_file, "GITHUB_ENV": envfile, "GITHUB_PATH": pathfile})
            if action_path:
                env["GITHUB_ACTION_PATH"] = action_path
            outputs = {}
            if "run" in step:
                status = self.run_shell(substitute(step["run"], ctx), step.get("shell"), env, job)
                if status != 0:
                    raise Failed("step \"%s\" failed with exit status %d" % (name, status))
                outputs = read_kv(outputs_file)
            else:
                outputs = self.uses(step, job, ctx, env_blocks)
            job["env"].update(read_kv(envfile))
            job["path"] = [l for l in open(pathfile).read().split("\n") if l] + job["path"]
            if step.get("id"):
                ctx["steps"][step["id"]] = {"outputs": outputs}
        return ctx["steps"]

    def uses(self, step, job, ctx, env_blocks):
        ref = step["uses"]
        target = ref.split("@")[0]
        if target == "actions/checkout":
            return {}
        if target == "actions/upload-artifact":
            paths = [p.strip() for p in substitute(step.get("with", {}).get("path", ""), ctx).split("\n") if p.strip()]
            for p in paths:
                if not os.path.exists(os.path.join(self.workspace, p)):
                    raise Failed("upload-artifact: %s does not exist" % p)
            return {}
        if target not in self.actions:
            raise Failed("no stand-in for uses: %s" % ref)
        action_dir = self.actions[target]
        action = yaml.safe_load(open(os.path.join(action_dir, "action.yml")))
        inputs = {k: str(v.get("default", "")) for k, v in (action.get("inputs") or {}).items()}
        for k, v in (step.get("with") or {}).items():
            if k not in inputs:
                raise Failed("%s has no input %s" % (ref, k))
            inputs[k] = substitute(v, ctx)
        inner = {"inputs": inputs, "runner": ctx["runner"], "github": dict(ctx["github"], action_path=action_dir),
                 "env": ctx["env"], "steps": {}}
        self.run_steps(action["runs"]["steps"], job, inner, [], action_path=action_dir)
        return {k: substitute(v.get("value", ""), inner) for k, v in (action.get("outputs") or {}).items()}

    def run(self, workflow):
        results = {}
        jobs = workflow["jobs"]
        pending = list(jobs)
        while pending:
            ready = [j for j in pending if all(n in results for n in ([jobs[j].get("needs")] if isinstance(
                jobs[j].get("needs"), str) else jobs[j].get("needs") or []))]
            if not ready:
                raise Failed("jobs wait on each other: %s" % pending)
            name = ready[0]
            pending.remove(name)
            spec = jobs[name]
            summary = os.path.join(self.temp, "summary-" + name)
            open(summary, "w").close()
            job = {"env": {}, "path": [], "summary": summary}
            ctx = {"runner": {"temp": self.temp, "os": "Linux"},
                   "github": {"workspace": self.workspace, "sha": self.sha},
                   "env": {}, "needs": {n: {"outputs": results[n]["outputs"]} for n in results}}
            for block in (workflow.get("env"), spec.get("env")):
                for k, v in (block or {}).items():
                    job["env"][k] = substitute(v, ctx)
            ctx["env"] = job["env"]
            print("gha_local: job: %s" % name, file=sys.stderr)
            self.run_steps(spec.get("steps", []), job, ctx, [])
            outputs = {k: substitute(v, ctx) for k, v in (spec.get("outputs") or {}).items()}
            results[name] = {"outputs": outputs, "summary": open(summary).read()}
        return results


def main():
    args = sys.argv[1:]
    workflow_path = args.pop(0)
    workspace, actions, env = None, {}, {}
    while args:
        flag = args.pop(0)
        value = args.pop(0)
        if flag == "--workspace":
            workspace = os.path.abspath(value)
        elif flag == "--action":
            k, v = value.split("=", 1)
            actions[k] = os.path.abspath(v)
        elif flag == "--env":
            k, v = value.split("=", 1)
            env[k] = v
        else:
            raise SystemExit("gha_local: unknown option " + flag)
    runner = Runner(workspace, actions, env)
    try:
        results = runner.run(yaml.safe_load(open(workflow_path)))
    except Failed as e:
        print("gha_local: error: %s" % e, file=sys.stderr)
        sys.exit(1)
    finally:
        shutil.rmtree(runner.temp, ignore_errors=True)
    print(json.dumps({"jobs": results}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
