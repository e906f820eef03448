// The activity chart: one bar per day, week, month or year, as GetLibraryStats buckets them.
import { ActivityBucket, type ActivityStats } from "../gen/audiohm/library/v1/library_pb.ts";
import { el, svg } from "../dom.ts";
import { activityBars, activitySummary, bucketLabel, listeningTime, plays } from "../format.ts";

const CHART_WIDTH = 600;
const CHART_HEIGHT = 140;

/** The caption names what the service sends when no range is asked for. */
export const BUCKET_CAPTIONS: Record<ActivityBucket, string> = {
  [ActivityBucket.UNSPECIFIED]: "Daily activity, last 30 days",
  [ActivityBucket.DAY]: "Daily activity, last 30 days",
  [ActivityBucket.WEEK]: "Weekly activity, last 26 weeks",
  [ActivityBucket.MONTH]: "Monthly activity, last 24 months",
  [ActivityBucket.YEAR]: "Yearly activity, every year",
};

export function activityChart(bucket: ActivityBucket, activity: ActivityStats[]): HTMLElement {
  const bars = activityBars(
    activity.map((a) => ({ date: a.startDate, plays: a.plays, listeningSeconds: a.listeningSeconds })),
    CHART_WIDTH,
    CHART_HEIGHT,
  );
  const summary = activitySummary(bucket, bars);
  const drawing = svg(
    "svg",
    {
      viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
      class: "h-full min-h-36 w-full",
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": summary,
      "data-bucket": ActivityBucket[bucket],
    },
    ...bars.map((b, i) => {
      const counted = activity[i]?.countedPlays ?? 0n;
      return svg(
        "rect",
        {
          x: String(b.x),
          y: String(b.y),
          width: String(b.width),
          height: String(b.height),
          rx: "1.5",
          class: "fill-violet-500",
          "data-date": b.date,
          "data-plays": String(b.plays),
          "data-counted": String(counted),
        },
        svg("title", {
          text: `${bucketLabel(bucket, b.date)}: ${plays(b.plays)} (${counted} that count), ${listeningTime(b.seconds)}`,
        }),
      );
    }),
  );
  const first = bars[0];
  const last = bars[bars.length - 1];
  // The chart grows to the height of the cards beside it.
  return el(
    "div",
    { class: "flex h-full flex-col" },
    el("p", { class: "mb-2 text-xs text-slate-400", text: summary }),
    el("div", { class: "min-h-40 flex-1 rounded-lg bg-slate-950/60 p-2" }, drawing),
    el(
      "div",
      { class: "mt-1 flex justify-between text-xs text-slate-500" },
      el("span", { text: first ? bucketLabel(bucket, first.date) : "" }),
      el("span", { text: last && last !== first ? bucketLabel(bucket, last.date) : "" }),
    ),
  );
}
