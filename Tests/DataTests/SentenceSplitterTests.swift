import Datasets
import Testing

/// `preprocess --split-sentences`' splitter on the cases a rule-based splitter must get right.
@Suite struct SentenceSplitterTests {
    @Test(arguments: [
        ("Hello world. This is a test! Is it? Yes.", ["Hello world.", "This is a test!", "Is it?", "Yes."]),
        ("Dr. Smith met Mr. J. R. R. Tolkien on Jan. 3. They talked.",
         ["Dr. Smith met Mr. J. R. R. Tolkien on Jan. 3.", "They talked."]),
        ("He said \"Stop.\" Then he left.", ["He said \"Stop.\"", "Then he left."]),
        ("Wait... what? (Really.) Yes", ["Wait... what?", "(Really.)", "Yes"]),
        ("The value is 3.14 and e.g. this works. Next.", ["The value is 3.14 and e.g. this works.", "Next."]),
        ("Version 2. 3 items follow.", ["Version 2.", "3 items follow."]),
        ("LOVE, n. A temporary insanity curable by marriage.", ["LOVE, n. A temporary insanity curable by marriage."]),
        ("Это тест. Второе предложение.", ["Это тест.", "Второе предложение."]),
        ("  leading and trailing space.   Then more.\n\n", ["leading and trailing space.", "Then more."]),
        ("no terminator at the end", ["no terminator at the end"]),
        ("lower case after a period. does not split", ["lower case after a period. does not split"]),
        ("", []),
        (" \n\t ", []),
    ])
    func splits(text: String, expected: [String]) {
        #expect(SentenceSplitter().split(text) == expected)
    }

    @Test func abbreviationsCanBeChanged() {
        var splitter = SentenceSplitter()
        splitter.abbreviations.insert("approx")
        splitter.abbreviations.remove("dr")
        #expect(splitter.split("See Dr. Who. It costs approx. Ten.") == ["See Dr.", "Who.", "It costs approx. Ten."])
    }
}
