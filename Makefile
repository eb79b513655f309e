# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
HOST   ?= 127.0.0.1
# `make run` installs what the embedded default needs (tens of MB); name more extras for a
# config that uses them: `make run EXTRAS=redis,semantic ASGI_LLM_CONFIG=proxy.yaml`.
EXTRAS ?=
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
RUN_STAMP = $(VENV)/.installed-run$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS)))
comma  := ,

.PHONY: install run test lint bench clean

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0  # the CPU build, before the semantic extra pulls another
	$(BIN)/python -m pip install -q -e '.[all,test]'
	touch $(STAMP)

$(RUN_STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(findstring semantic,$(EXTRAS))$(findstring all,$(EXTRAS)),$(BIN)/python -m pip install -q torch==2.13.0)
	$(BIN)/python -m pip install -q -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	touch $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/asgi-llm serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check asgi_llm tests benchmarks
	$(BIN)/ruff format --check asgi_llm tests benchmarks
	$(BIN)/mypy asgi_llm

bench: $(STAMP)
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
