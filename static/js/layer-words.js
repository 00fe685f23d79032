// One line of plain words for each kind of Keras layer, in the tutorial's spirit.
"use strict";

const LayerWords = (() => {
  const WORDS = {
    Conv2D: "Slides small learned 3×3 (or larger) patterns over the image; each pattern makes one map, dark where the image looks like the pattern.",
    MaxPooling2D: "Shrinks each map by keeping only the largest value of every small square: the image gets smaller, the strong signals stay.",
    AveragePooling2D: "Shrinks each map by averaging every small square.",
    GlobalAveragePooling2D: "Turns each map into one number, its average.",
    GlobalMaxPooling2D: "Turns each map into one number, its largest value.",
    Flatten: "Lays all the maps out in one long row of numbers, so that dense layers can read them.",
    Reshape: "Arranges the same numbers in another shape; nothing is computed.",
    Dense: "Each unit adds up every number of the layer before, each times its own learned weight, plus a bias; the last one turns ten sums into ten probabilities.",
    Dropout: "During training switches off random units so the network cannot lean on any one; while you draw it passes everything through unchanged.",
    Activation: "Applies a fixed function to every number (for example ReLU: negatives become 0).",
    ReLU: "Keeps positive numbers and turns negative ones into 0.",
    Softmax: "Turns ten scores into ten probabilities that add up to 1.",
    BatchNormalization: "Rescales each channel with averages learned during training, so numbers stay in a steady range.",
    Rescaling: "Multiplies every number by a constant (and may add one).",
    Add: "Adds the outputs of two layers, number by number.",
    Concatenate: "Puts the outputs of several layers side by side.",
  };

  // `drawn`: whether the page draws this layer's output (a layer the API gives no data for is only listed).
  function describe(type, drawn = true) {
    if (WORDS[type]) return WORDS[type];
    return drawn ? `A Keras ${type} layer.` : `A Keras ${type} layer: listed, not drawn.`;
  }

  return { describe, known: (type) => type in WORDS };
})();
