"""Azure LLM 2023 and Mooncake readers: published statistics, bad rows, shipped length tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cluster_sim.errors import TraceError
from cluster_sim.workload.lengths import LENGTHS, PROBS
from cluster_sim.workload.traces import azure_llm, mooncake

AZURE = "azure_llm_2023/AzureLLMInferenceTrace_{}.csv"
MOONCAKE = "mooncake_fast25/{}_trace.jsonl"


# ---- published statistics (DOMAIN.md 4.4, traces README) ---------------------------------------
def test_azure_code_stats(traces):
    s = azure_llm.stats(traces / AZURE.format("code"))
    assert s["count"] == 8819
    assert round(s["span_s"]) == 3436
    assert round(s["mean_rate_per_s"], 2) == 2.57
    assert round(s["interarrival_cv"], 1) == 13.2
    assert s["idle_gaps"] == 12 and round(s["longest_gap_s"]) == 217 and round(s["idle_gap_total_s"]) == 1443
    assert s["max_per_minute"] == 632
    assert (round(s["prompt_tokens_mean"]), s["prompt_tokens_p50"], s["prompt_tokens_p99"]) == (2048, 1469, 7436)
    assert (round(s["prompt_tokens_p90"]), s["prompt_tokens_max"]) == (5188, 7437)
    assert (round(s["output_tokens_mean"], 1), s["output_tokens_p50"]) == (27.9, 13)
    assert (round(s["output_tokens_p99"], 1), s["output_tokens_p90"], s["output_tokens_max"]) == (251.5, 55, 1899)


def test_azure_conv_stats(traces):
    s = azure_llm.stats(traces / AZURE.format("conv"))
    assert s["count"] == 19366
    assert round(s["span_s"]) == 3502
    assert round(s["mean_rate_per_s"], 2) == 5.53
    assert round(s["interarrival_cv"], 2) == 1.09
    assert s["idle_gaps"] == 0
    assert (s["min_per_minute"], s["max_per_minute"], round(s["mean_per_minute"])) == (37, 507, 328)
    assert (round(s["prompt_tokens_mean"]), s["prompt_tokens_p50"], s["prompt_tokens_p99"]) == (1155, 1020, 4142)
    assert (s["prompt_tokens_p90"], s["prompt_tokens_max"]) == (2734.5, 14050)
    assert (round(s["output_tokens_mean"], 1), s["output_tokens_p50"], s["output_tokens_p99"]) == (211.1, 129, 601)
    assert (s["output_tokens_p90"], s["output_tokens_max"]) == (424, 1000)


@pytest.mark.parametrize("name,count,span_s,rate,inp,out,blocks", [
    ("conversation", 12031, 3536.999, 3.40, (12035, 6909, 27367, 85400.4, 126195),
     (342.6, 350, 597, 1118.5, 2000), (105710, 288500, 0.366)),
    ("synthetic", 3993, 1022.025, 3.91, (15325, 11587, 38611.2, 66456.16, 191378),
     (149.1, 69, 389, 768.08, 893), (77953, 121877, 0.640)),
])
def test_mooncake_stats(traces, name, count, span_s, rate, inp, out, blocks):
    s = mooncake.stats(traces / MOONCAKE.format(name))
    assert s["count"] == count
    assert s["span_s"] == pytest.approx(span_s, abs=1e-9)
    assert round(s["mean_rate_per_s"], 2) == rate
    keys = ("mean", "p50", "p90", "p99", "max")
    assert round(s["prompt_tokens_mean"]) == inp[0]
    assert [s[f"prompt_tokens_{k}"] for k in keys[1:]] == pytest.approx(list(inp[1:]), abs=1e-6)
    assert round(s["output_tokens_mean"], 1) == out[0]
    assert [s[f"output_tokens_{k}"] for k in keys[1:]] == pytest.approx(list(out[1:]), abs=1e-6)
    assert (s["blocks_repeated"], s["blocks_total"]) == blocks[:2]
    assert round(s["repeated_block_fraction"], 3) == blocks[2]


# ---- table contents --------------------------------------------------------------------------
def test_azure_table_fast_and_careful_paths_agree(traces):
    path = traces / AZURE.format("code")
    fast = azure_llm._fast(path)
    assert fast is not None  # the real file takes the typed pyarrow path
    careful = azure_llm._careful(path)
    for a, b in zip(fast, careful, strict=True):
        assert np.array_equal(a, b)
    t = azure_llm.read(path)
    assert t.arrival_s[0] == 0.0 and (np.diff(t.arrival_s) >= 0).all()
    # 18:17:03.9799600 -> 18:17:04.0319600: 52 ms to the 100-ns digit
    assert t.arrival_s[1] == pytest.approx(0.052, abs=1e-9)
    assert t.prompt_tokens[:2].tolist() == [4808, 3180] and t.output_tokens[:2].tolist() == [10, 8]
    assert t.source == "AzureLLMInferenceTrace_code.csv" and not t.has_blocks


def test_mooncake_table_has_prefix_blocks(traces):
    path = traces / MOONCAKE.format("conversation")
    fast = mooncake._fast(path)
    assert fast is not None
    for a, b in zip(fast, mooncake._careful(path), strict=True):
        assert np.array_equal(a, b)
    t = mooncake.read(path)
    assert t.block_tokens == 512 and t.has_blocks
    assert t.blocks(0).tolist() == list(range(14)) and t.blocks(1)[0] == 0
    assert (t.block_counts == -(-t.prompt_tokens.astype(np.int64) // 512)).all()
    assert t.arrival_s[-1] == pytest.approx(3536.999)


def test_seven_digit_timestamps_and_crlf(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n2023-11-16 18:00:00.0000001,5,1\r\n"
                  b"2023-11-16 18:00:00.0000004,6,2\r\n2023-11-16 17:59:59.9999999,7,3")
    t = azure_llm.read(p)
    assert t.arrival_s.tolist() == pytest.approx([0.0, 2e-7, 5e-7], abs=1e-12)  # sorted, to the 100 ns
    assert t.prompt_tokens.tolist() == [7, 5, 6]


# ---- bad rows ----------------------------------------------------------------------------------
def azure_file(tmp_path, rows: list[str], header: str = "TIMESTAMP,ContextTokens,GeneratedTokens"):
    p = tmp_path / "trace.csv"
    good = [f"2023-11-16 18:00:{i:02d}.0000000,{100 + i},{i + 1}" for i in range(20)]
    p.write_text("\r\n".join([header, *good[:15], *rows, *good[15:]]), newline="")
    return p  # the first bad row is on line 17


@pytest.mark.parametrize("row,msg", [
    ("2023-11-16 18:00:59.0,abc,3", "trace.csv:17: ContextTokens: not a number ('abc')"),
    ("2023-11-16 18:00:59.0,12,-3", "trace.csv:17: GeneratedTokens: must be >= 0, got '-3'"),
    ("2023-11-16 18:00:59.0,nan,3", "trace.csv:17: ContextTokens: not a number ('nan')"),
    ("2023-11-16 18:00:59.0,12.5,3", "trace.csv:17: ContextTokens: not an integer ('12.5')"),
    ("2023-11-16 18:00:59.0,12", "trace.csv:17: GeneratedTokens: empty"),
    ("yesterday,12,3", "trace.csv:17: TIMESTAMP: not a timestamp ('yesterday')"),
])
def test_azure_bad_rows_name_file_line_column(tmp_path, row, msg):
    with pytest.raises(TraceError) as exc:
        azure_llm.read(azure_file(tmp_path, [row]))
    assert str(exc.value) == msg


def test_azure_bad_files(tmp_path):
    with pytest.raises(TraceError, match="missing column"):
        azure_llm.read(azure_file(tmp_path, [], header="TIMESTAMP,ContextTokens,Generated"))
    with pytest.raises(TraceError, match="no such file"):
        azure_llm.read(tmp_path / "nope.csv")
    with pytest.raises(TraceError, match="trace.csv"):
        azure_llm.read(azure_file(tmp_path, ["2023-11-16 18:00:59.0,1,2,3"]))
    empty = tmp_path / "empty.csv"
    empty.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\r\n")
    with pytest.raises(TraceError, match="no requests"):
        azure_llm.read(empty)


def mooncake_file(tmp_path, bad: str):
    rows = [json.dumps({"timestamp": 10 * i, "input_length": 600, "output_length": 5, "hash_ids": [i, i + 100]})
            for i in range(20)]
    p = tmp_path / "trace.jsonl"
    p.write_text("\n".join([*rows[:16], bad, *rows[16:]]) + "\n")
    return p  # the bad line is line 17


@pytest.mark.parametrize("row,msg", [
    ('{"timestamp": 5, "input_length": "abc", "output_length": 1, "hash_ids": [1]}',
     "trace.jsonl:17: input_length: not a number ('abc')"),
    ('{"timestamp": 5, "input_length": 10, "output_length": -1, "hash_ids": [1]}',
     "trace.jsonl:17: output_length: must be a finite number >= 0, got -1"),
    ('{"timestamp": 5, "input_length": 10, "hash_ids": [1]}', "trace.jsonl:17: output_length: missing value"),
    ('{"timestamp": 5, "input_length": 1000, "output_length": 1, "hash_ids": [1]}',
     "trace.jsonl:17: hash_ids: 1 blocks for input_length 1000 (expected ceil(1000/512) = 2)"),
    ('{"timestamp": 5, "input_length": 10, "output_length": 1, "hash_ids": ["a"]}',
     "trace.jsonl:17: hash_ids: expected a list of integers, got ['a']"),
    ('{"timestamp": 5, "input_length": 10,', "trace.jsonl:17: not valid JSON"),
])
def test_mooncake_bad_lines_name_file_line_field(tmp_path, row, msg):
    with pytest.raises(TraceError) as exc:
        mooncake.read(mooncake_file(tmp_path, row))
    assert str(exc.value).startswith(msg)


# ---- shipped length tables are the traces' quantiles -------------------------------------------
@pytest.mark.parametrize("name,reader,path", [
    ("azure_code", azure_llm.read, AZURE.format("code")),
    ("azure_conv", azure_llm.read, AZURE.format("conv")),
    ("mooncake", mooncake.read, MOONCAKE.format("conversation")),
])
def test_length_tables_match_traces(traces, name, reader, path):
    t = reader(traces / path)
    q = np.asarray(PROBS) * 100
    dist = LENGTHS[name]
    assert np.asarray(dist.prompt) == pytest.approx(np.percentile(t.prompt_tokens, q), abs=0.051)
    assert np.asarray(dist.output) == pytest.approx(np.percentile(t.output_tokens, q), abs=0.051)
    lp = np.log(t.prompt_tokens.astype(float))
    mu, sigma = LENGTHS[f"{name}_lognormal"].prompt[:2]
    assert (mu, sigma) == pytest.approx((lp.mean(), lp.std()), abs=1e-4)
