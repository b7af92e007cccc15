"""Working from a trained text-classifier workdir: predictions, and accuracies on the test split or any file.

    predict("runs/rnn_sst2", ["a gorgeous film"])             # [("positive", 0.97)]
    evaluate_file("runs/rnn_sst2", "my_reviews.txt")           # accuracy + predictions_my_reviews.txt.tsv

Everything is rebuilt from what the run left in its folder (vaecnn.lifecycle.restore): config.json (the
model, and how the kept parameters were selected), text_pipeline.json (vocabulary, classes, buckets) and
checkpoints/. The run's own test accuracy, again: lifecycle.evaluate(text_classifier.RECIPE, workdir).
Sentences are classified in batches of one shape (the longest sentence's), so one program is compiled
however many sentences there are.
"""

import os
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from absl import logging

from vaecnn import files, lifecycle
from vaecnn.classification import ClassifierTask
from vaecnn.data.text import PIPELINE_FILE, LoadReport, TextBatcher, TextPipeline
from vaecnn.errors import ConfigError
from vaecnn.recipes.text_classifier import RECIPE, TextClassifierConfig, read_split_file


def _restored(workdir: str) -> tuple[TextClassifierConfig, TextPipeline, ClassifierTask, Any]:
    """(config, pipeline, task, kept parameters) of a trained workdir."""
    if not os.path.exists(os.path.join(workdir, PIPELINE_FILE)):
        hint = (f"; it holds a cross-validation run: pass one fold's folder, e.g. {os.path.join(workdir, 'fold_00')}"
                if os.path.isdir(os.path.join(workdir, "fold_00")) else "; train one there first")
        raise ConfigError(f"no trained classifier in {workdir} (no {PIPELINE_FILE}){hint}")
    restored = lifecycle.restore(RECIPE, workdir)
    return restored.config, restored.built.family, restored.built.task, restored.params


def _probabilities(workdir: str, dataset_of: Any) -> tuple[TextClassifierConfig, TextPipeline, np.ndarray]:
    """(config, pipeline, probabilities_NxC) of the sentences of `dataset_of(pipeline)`."""
    config, pipeline, task, params = _restored(workdir)
    encoded = pipeline.encode(dataset_of(pipeline))
    if encoded.num_truncated or encoded.num_empty:
        logging.warning("%d sentences were cut to max_len=%s tokens; %d had no token and read as <unk>",
                        encoded.num_truncated, config.max_len, encoded.num_empty)
    longest = int(encoded.lengths.max())
    batcher = TextBatcher(encoded, min(config.train.eval_batch_size, len(encoded)), boundaries=(longest,),
                          include_index=True)
    predict_proba = jax.jit(task.predict_proba)
    proba_NxC = np.zeros((len(encoded), len(pipeline.class_names)), np.float32)
    for batch in batcher.eval_batches():
        proba_BxC, index_B = np.asarray(predict_proba(params, batch)), batch["index"]
        proba_NxC[index_B[index_B >= 0]] = proba_BxC[index_B >= 0]
    return config, pipeline, proba_NxC


def predict(workdir: str, sentences: Sequence[str]) -> list[tuple[str, float]]:
    """(label name, its probability) for each sentence, from the selected parameters in `workdir`."""
    if not sentences:
        return []
    _, pipeline, proba_NxC = _probabilities(workdir, lambda pipeline: pipeline.unlabelled(sentences))
    labels = np.argmax(proba_NxC, axis=1)
    return [(pipeline.class_names[label], float(proba_NxC[row, label])) for row, label in enumerate(labels)]


def evaluate_file(workdir: str, path: str, output: str | None = None) -> dict[str, Any]:
    """The accuracy of `workdir`'s classifier on a labelled file (GLUE TSV or Kim's "label text" lines,
    in the run's classes), and a TSV of its predictions, one line per example:
    label<TAB>predicted<TAB>probability<TAB>sentence, written to `output` (default:
    workdir/predictions_<file name>.tsv)."""
    class_names = TextPipeline.load(workdir).class_names
    load_report = LoadReport()
    dataset = read_split_file(path, "eval", load_report, class_names)
    _, pipeline, proba_NxC = _probabilities(workdir, lambda pipeline: dataset)
    predicted = np.argmax(proba_NxC, axis=1)
    output = output or os.path.join(workdir, f"predictions_{os.path.basename(path)}.tsv")
    lines = ["label\tpredicted\tprobability\tsentence"] + [
        f"{class_names[label]}\t{class_names[guess]}\t{proba_NxC[row, guess]:.4f}\t{text}"
        for row, (label, guess, text) in enumerate(zip(dataset.labels, predicted, dataset.texts))]
    files.write_text(output, "\n".join(lines) + "\n")
    return {"accuracy": float(np.mean(predicted == dataset.labels)), "count": len(dataset),
            "skipped": load_report.num_skipped(), "predictions_file": output}
