"""Attention without Transformer Engine: torch SDPA as the local layers' core attention (padded and packed
THD batches) and our all-gather context-parallel attention on packed batches, against Megatron-Core's own
DotProductAttention, each sequence run alone, and the unsplit run."""
import pytest
import torch

from attention_workers import run


def _config(**overrides):
    from megatron.core.transformer.transformer_config import TransformerConfig

    settings = dict(num_layers=1, hidden_size=64, num_attention_heads=4, num_query_groups=2, kv_channels=16,
                    attention_dropout=0.0, use_cpu_initialization=True)
    return TransformerConfig(**settings | overrides)


def _sdpa(**overrides):
    from megatron.core.transformer.enums import AttnMaskType

    from megatron_mc.models.sdpa_attention import SDPAttention

    return SDPAttention(_config(**overrides), layer_number=1, attn_mask_type=AttnMaskType.causal,
                        attention_type="self")


def _packed(boundaries):
    from megatron.core.packed_seq_params import PackedSeqParams

    cu = torch.tensor(boundaries, dtype=torch.int32)
    return PackedSeqParams(qkv_format="thd", cu_seqlens_q=cu, cu_seqlens_kv=cu, cu_seqlens_q_padded=cu,
                           cu_seqlens_kv_padded=cu, max_seqlen_q=8, max_seqlen_kv=8)


def test_packed_segments_attend_causally_within_themselves_only():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(14, n, 16, generator=generator) for n in (4, 2, 2))
    boundaries = [0, 5, 13, 14]
    out = _sdpa()(query, key, value, None, packed_seq_params=_packed(boundaries))
    # dense reference: block-diagonal causal mask, keys repeated per head
    segment = torch.bucketize(torch.arange(14), torch.tensor(boundaries[1:]), right=True)
    visible = (segment[:, None] == segment[None, :]) & (torch.arange(14)[None, :] <= torch.arange(14)[:, None])
    scores = torch.einsum("qhd,khd->hqk", query, key.repeat_interleave(2, 1)) / 4.0
    expected = torch.einsum("hqk,khd->qhd", scores.masked_fill(~visible, -torch.inf).softmax(-1),
                            value.repeat_interleave(2, 1))
    assert out.shape == (14, 64)
    assert (out - expected.reshape(14, 64)).abs().max() < 1e-5


def test_softmax_scale_is_respected():
    query, key, value = torch.randn(6, 1, 4, 16), torch.randn(6, 1, 2, 16), torch.randn(6, 1, 2, 16)
    default = _sdpa()(query, key, value, None)
    assert (_sdpa(softmax_scale=0.25)(query, key, value, None) - default).abs().max() < 1e-6
    assert (_sdpa(softmax_scale=1.0)(query, key, value, None) - default).abs().max() > 1e-3


@pytest.mark.parametrize("overrides,named", [({"window_size": (4, 0)}, "window_size"),
                                             ({"apply_query_key_layer_scaling": True, "fp16": True},
                                              "apply_query_key_layer_scaling"),
                                             ({"softmax_type": "off-by-one"}, "softmax_type")])
def test_settings_sdpa_cannot_express_are_refused_by_name(overrides, named):
    with pytest.raises(ValueError, match=named):
        _sdpa(**overrides)


def test_masks_bias_and_wrong_packed_lengths_are_refused():
    query, key = torch.randn(8, 1, 4, 16), torch.randn(8, 1, 2, 16)
    with pytest.raises(ValueError, match="attention_mask=None"):
        _sdpa()(query, key, key, torch.ones(1, 1, 8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="attention_bias"):
        _sdpa()(query, key, key, None, attention_bias=torch.zeros(1))
    with pytest.raises(ValueError, match="end at 9"):
        _sdpa()(query[:, 0], key[:, 0], key[:, 0], None, packed_seq_params=_packed([0, 4, 9]))


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return run("single", 1, tmp_path_factory.mktemp("attention-single"))


def test_local_spec_uses_sdpa_unless_asked_for_megatrons_attention(single):
    assert single["core_attention"] == {"sdpa": "SDPAttention", "dot_product": "DotProductAttention"}


def test_sdpa_equals_megatrons_dot_product_attention_in_a_gpt_model(single):
    assert single["padded/logits_diff"] < 1e-5
    assert single["padded/grad_count"] > 10 and single["padded/grad_diff"] < 1e-5


@pytest.mark.parametrize("rope", ["rope", "yarn"])
def test_packed_logits_equal_each_sequence_alone(single, rope):
    assert single[f"packed/{rope}_diff"] < 1e-5


@pytest.mark.distributed
def test_context_parallel_packed_and_padded_logits_equal_the_unsplit_run(tmp_path):
    measured = run("cp2", 2, tmp_path)
    assert measured["packed_tokens_per_rank"] == 18
    assert measured["packed_diff"] < 1e-5
    assert measured["padded_diff"] < 1e-5


@pytest.mark.gpu
def test_padded_and_packed_calls_take_the_flash_kernel_on_cuda():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    generator = torch.Generator(device="cuda").manual_seed(0)
    query, key, value = (torch.randn(64, 2, n, 64, device="cuda", dtype=torch.bfloat16, generator=generator)
                         for n in (4, 2, 2))
    attention = _sdpa(kv_channels=64, hidden_size=256)
    reference = attention(query.float(), key.float(), value.float(), None)
    packed_reference = attention(query[:, 0].float(), key[:, 0].float(), value[:, 0].float(), None,
                                 packed_seq_params=_packed([0, 24, 64]))
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):  # raises where flash cannot take the call
        padded = attention(query, key, value, None)
        packed = attention(query[:, 0], key[:, 0], value[:, 0], None, packed_seq_params=_packed([0, 24, 64]))
    assert (padded.float() - reference).abs().max() < 3e-2
    assert (packed.float() - packed_reference).abs().max() < 3e-2
