"""The text pipeline shared by the Elman RNN and the Kim (2014) CNN experiments, one module per job:

    records    TextDataset, LoadReport, the file readers (GLUE TSV, Kim's "label text" lines)
    sources    the named data sets (MR, SST-2, Kim's splits, TFDS) and load_text_dataset
    tokens     tokenize, Vocabulary
    encoding   encode_dataset, stratified_kfold, length buckets, TextBatcher
    pipeline   TextPipeline: fit on a training split, batchers for any split, saved in the workdir


Data flows one way::

    files / TFDS  ->  TextDataset (raw strings + int labels, per split; LoadReport of what was skipped)
                  ->  Vocabulary (built from the TRAINING split only; saved in text_pipeline.json)
                  ->  EncodedDataset (ragged int32 token ids, lengths; truncation counted)
                  ->  TextBatcher (length buckets: a handful of static shapes for a jitted step)

Sources
-------
* GLUE-style TSV with a header containing ``sentence`` and ``label`` (GLUE SST-2 ``train.tsv``/``dev.tsv``):
  :func:`read_glue_tsv`, :func:`load_glue_tsv`.
* Kim-style ``label text`` lines (``stsa.binary.*``, ``stsa.fine.*``, any number of classes):
  :func:`read_kim_lines`, :func:`load_kim`.
* MR (Pang & Lee sentence polarity): ``rt-polarity.pos`` / ``rt-polarity.neg``, labels 1 / 0, a single split
  named ``"all"`` (MR has no test split; it is evaluated by :func:`stratified_kfold`): :func:`load_mr`.
* TFDS ``glue/sst2`` and ``imdb_reviews`` through ``tfds.data_source`` (no TensorFlow needed):
  :func:`load_tfds_text`.
* :func:`load_text_dataset` dispatches on a short name (``"mr"``, ``"sst2"``, ``"stsa.binary"``,
  ``"stsa.fine"``, ``"tfds:glue/sst2"``, ``"tfds:imdb_reviews"``) for experiment flags.

Files are read as bytes, decoded as UTF-8 and, when that fails, as Latin-1 (logged and recorded in the report;
MR is Latin-1), and split on ``"\\n"`` only: MR contains ``\\x85`` (NEL), which ``str.splitlines`` would
treat as a line break. Lines that cannot be used (empty, no label, unknown label, no text, wrong number of
TSV columns) are skipped and counted in :class:`LoadReport` with the line numbers of the first few; a file
with no usable line raises a :class:`TextDataError` (a ``ValueError``) naming the file and the expected
format.

TFDS
----
``tfds.data_source`` gives random access without TensorFlow; :mod:`vaecnn.data.tfds_source` opens it under
the same policy as the image data sets (a prepared copy, else a download only when TFDS's host answers, else
one DataError naming ``--data_dir``) and registers the legacy ``glue`` builder, which TFDS otherwise
registers only when TensorFlow is present.
"""

from vaecnn.data.text.records import (  # noqa: F401 -- the package's public names
    BAD_COLUMNS, BINARY_CLASS_NAMES, EMPTY_LINE, FINE_CLASS_NAMES, LoadReport, MAX_INFERRED_CLASSES,
    MISSING_LABEL, MISSING_TEXT, MissingTextFileError, SkippedLine, TextDataError, TextDataset, TextSplits,
    UNKNOWN_LABEL, UNLABELED, read_glue_tsv, read_kim_lines, read_text_lines)
from vaecnn.data.text.sources import (  # noqa: F401 -- the package's public names
    TEXT_DATASETS, TFDS_TEXT_SOURCES, load_glue_tsv, load_kim, load_mr, load_sst2_phrases, load_text_dataset,
    load_tfds_text)
from vaecnn.data.text.tokens import (  # noqa: F401 -- the package's public names
    CONTRACTIONS, PAD_ID, PAD_TOKEN, SEPARATED_PUNCTUATION, UNK_ID, UNK_TOKEN, Vocabulary, build_vocabulary,
    tokenize)
from vaecnn.data.text.encoding import (  # noqa: F401 -- the package's public names
    EncodedDataset, TextBatcher, bucket_boundaries, encode_dataset, stratified_kfold, vocabulary_from_dataset)
from vaecnn.data.text.pipeline import PIPELINE_FILE, TextPipeline  # noqa: F401
