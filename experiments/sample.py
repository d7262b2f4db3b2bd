"""Sample text from a trained language model (any kind that can decode).

  python -m experiments.sample --workdir=runs/lm_softmax --prompt="ROMEO:" --max_new_tokens=300
  python -m experiments.sample --workdir=runs/lm_softmax --prompt="To be" --temperature=0   # greedy

Reads the run's config.json and its best-validation parameters (`--checkpoint=latest` for the
last saved state), feeds the prompt's UTF-8 bytes token by token through the attention kind's
decoder (KV cache, rolling window or recurrent state) and prints the prompt and its continuation.
Greedy decoding (temperature 0) is deterministic; otherwise --seed fixes the sample.
"""

import sys

from absl import app, flags, logging

from jaxattn import cpu_runtime

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained LM's workdir (experiments.train).")
_PROMPT = flags.DEFINE_string("prompt", "\n", "Text to continue (at least one byte).")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 200, "Bytes to generate.")
_TEMPERATURE = flags.DEFINE_float("temperature", 0.8, "0 = greedy (deterministic).")
_TOP_K = flags.DEFINE_integer("top_k", None, "Sample among the k most likely bytes.")
_TOP_P = flags.DEFINE_float("top_p", None, "Sample within the top-p probability nucleus.")
_SEED = flags.DEFINE_integer("seed", 0, "Sampling seed.")
_NUM = flags.DEFINE_integer("num_samples", 1, "Independent continuations of the prompt.")
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "best", ["best", "latest"], "best-validation params or the latest state."
)
flags.mark_flags_as_required(["workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from jaxattn import errors, sampling
    from jaxattn.train import restore

    logging.set_verbosity(logging.WARNING)  # orbax reports every restore at INFO
    try:
        _, model, variables = restore.load(_WORKDIR.value, checkpoint_kind=_CHECKPOINT.value)
        text = sampling.sample_text(
            model,
            variables,
            _PROMPT.value,
            num_samples=_NUM.value,
            max_new_tokens=_MAX_NEW.value,
            temperature=_TEMPERATURE.value,
            top_k=_TOP_K.value,
            top_p=_TOP_P.value,
            seed=_SEED.value,
        )
    except errors.JaxattnError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    for i, sample in enumerate(text):
        if len(text) > 1:
            print(f"--- sample {i}")
        sys.stdout.write(sample + "\n")


if __name__ == "__main__":
    cpu_runtime.reexec_with_defaults()
    app.run(main)
