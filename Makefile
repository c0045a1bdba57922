# kyb: every command a person runs. `make run` starts the stack, `make test` proves it.
SHELL := /bin/bash
export KYB_CACHE ?= $(HOME)/.cache/kyb

.PHONY: help setup run test bench import-bench flags-bench images smoke control-plane clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup:  ## install everything (Debian packages, .venv, FerretDB, check tools); idempotent
	@scripts/setup.sh

run: setup  ## start FerretDB, Redis and the apps locally; Ctrl-C stops them all
	@scripts/run.sh

test: setup  ## run every test against real servers
	@scripts/test.sh

import-bench: setup  ## time the import of a generated 50,000-task journal into FerretDB
	@.venv/bin/python bench/import_bench.py

flags-bench: setup  ## time kubelet-style flag swaps until every gunicorn worker sees them
	@.venv/bin/python bench/flags_bench.py

bench: setup  ## the backend under load against a bare Flask ceiling (wrk), caches, latency, import, flags: bench/results/
	@scripts/bench-setup.sh
	@KYB_BENCH_BIN="$$(scripts/bench-setup.sh --print-bin)" .venv/bin/python bench/bench.py

images:  ## build both images into Minikube (after `minikube start`)
	minikube image build -t kyb-backend:0.1.0 -f docker/backend.Dockerfile .
	minikube image build -t kyb-frontend:0.1.0 -f docker/frontend.Dockerfile .

smoke:  ## end-to-end smoke test of a running stack: make smoke BASE_URL=http://127.0.0.1:8000
	@.venv/bin/python scripts/smoke.py $(BASE_URL)

control-plane:  ## build etcd, kube-apiserver, kube-controller-manager for the tests (once, cached)
	@scripts/setup-control-plane.sh

clean:  ## remove the local data of `make run` (var/)
	rm -rf var/
