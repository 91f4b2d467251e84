//! `ddbctl table …` and `ddbctl item …`: the DynamoDB data plane from the command line.

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create a table.
    ///
    /// Example: ddbctl table create orders --hash-key customer:S --range-key placed_at:N
    ///
    /// Example: ddbctl table create hits --hash-key page:S --billing provisioned --rcu 5 --wcu 5
    Create {
        /// The table's name.
        name: String,
        /// The partition key as NAME:TYPE, TYPE one of S, N, B.
        ///
        /// Example: --hash-key customer:S
        #[arg(long)]
        hash_key: String,
        /// The sort key as NAME:TYPE, TYPE one of S, N, B.
        ///
        /// Example: --range-key placed_at:N
        #[arg(long)]
        range_key: Option<String>,
        /// How the table is billed.
        ///
        /// Example: --billing provisioned --rcu 10 --wcu 5
        #[arg(long, value_enum, default_value_t = Billing::OnDemand)]
        billing: Billing,
        /// Read capacity units (required with --billing provisioned).
        ///
        /// Example: --rcu 10
        #[arg(long)]
        rcu: Option<u64>,
        /// Write capacity units (required with --billing provisioned).
        ///
        /// Example: --wcu 5
        #[arg(long)]
        wcu: Option<u64>,
    },
    /// List every table's name.
    ///
    /// Example: ddbctl table ls
    Ls,
    /// Show a table's key schema, billing mode and status, and the capacity it consumed and
    /// had throttled across the cluster (see `table capacity` for the breakdown).
    ///
    /// Example: ddbctl table describe orders --output json
    Describe {
        /// The table's name.
        name: String,
    },
    /// Change a table's provisioned throughput (UpdateTable). Its partitions stay as they are:
    /// lowering the rate lowers each partition's share.
    ///
    /// Example: ddbctl table update hits --rcu 10 --wcu 200
    Update {
        /// The table's name.
        name: String,
        /// Read capacity units.
        ///
        /// Example: --rcu 10
        #[arg(long)]
        rcu: u64,
        /// Write capacity units.
        ///
        /// Example: --wcu 200
        #[arg(long)]
        wcu: u64,
    },
    /// Show where a table's capacity goes: each router's rate (granted by global admission
    /// control), consumed units and throttled requests, GAC's rate, burst credit and demand,
    /// and every partition replica's allocated rate, consumption, throttling and burst credit.
    /// Asks every node of the cluster (GET /admission/status).
    ///
    /// Example: ddbctl table capacity orders
    ///
    /// Example: ddbctl table capacity orders --output json
    Capacity {
        /// The table's name.
        name: String,
    },
    /// Delete a table and every item in it.
    ///
    /// Example: ddbctl table delete orders
    Delete {
        /// The table's name.
        name: String,
    },
}

/// `--billing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Billing {
    /// PAY_PER_REQUEST: no capacity to plan.
    OnDemand,
    /// PROVISIONED: fixed read and write capacity (--rcu, --wcu).
    Provisioned,
}

/// Expression flags shared by the commands that take a condition.
#[derive(Debug, Args)]
pub struct ConditionArgs {
    /// A condition expression; the write happens only if it holds for the stored item, else
    /// the command fails with ConditionalCheckFailedException and exit status 1.
    ///
    /// Example: --condition 'attribute_not_exists(pk)'
    #[arg(long)]
    pub condition: Option<String>,
    #[command(flatten)]
    pub placeholders: PlaceholderArgs,
}

/// `--names` and `--values`: expression placeholders.
#[derive(Debug, Args)]
pub struct PlaceholderArgs {
    /// Expression attribute names as a JSON object (ExpressionAttributeNames).
    ///
    /// Example: --names '{"#s": "status"}'
    #[arg(long)]
    pub names: Option<String>,
    /// Expression attribute values as a JSON object of DynamoDB JSON values
    /// (ExpressionAttributeValues); plain JSON values with --plain.
    ///
    /// Example: --values '{":min": {"N": "10"}}'   or with --plain: --values '{":min": 10}'
    #[arg(long)]
    pub values: Option<String>,
}

/// What UpdateItem and DeleteItem return (ReturnValues).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReturnValues {
    /// Nothing.
    None,
    /// The whole item as it was before.
    AllOld,
    /// The updated attributes as they were before.
    UpdatedOld,
    /// The whole item as it is after.
    AllNew,
    /// The updated attributes as they are after.
    UpdatedNew,
}

impl ReturnValues {
    /// DynamoDB's spelling.
    pub fn as_api(self) -> &'static str {
        match self {
            ReturnValues::None => "NONE",
            ReturnValues::AllOld => "ALL_OLD",
            ReturnValues::UpdatedOld => "UPDATED_OLD",
            ReturnValues::AllNew => "ALL_NEW",
            ReturnValues::UpdatedNew => "UPDATED_NEW",
        }
    }
}

/// Reading and filtering flags shared by `item query` and `item scan`.
#[derive(Debug, Args)]
pub struct ReadManyArgs {
    /// A filter expression applied after reading (it does not reduce what is read).
    ///
    /// Example: --filter 'amount > :min'
    #[arg(long)]
    pub filter: Option<String>,
    /// Attributes to return (ProjectionExpression).
    ///
    /// Example: --projection 'pk, amount'
    #[arg(long)]
    pub projection: Option<String>,
    /// The most items to read per request (before filtering); with --all, the page size.
    ///
    /// Example: --limit 100
    #[arg(long)]
    pub limit: Option<u64>,
    /// Follow LastEvaluatedKey and read every page, not just the first.
    ///
    /// Example: --all
    #[arg(long)]
    pub all: bool,
    /// Strongly consistent reads.
    ///
    /// Example: --consistent
    #[arg(long)]
    pub consistent: bool,
}

#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// Write an item, replacing any item with the same key.
    ///
    /// Example: ddbctl item put orders '{"customer": {"S": "ann"}, "placed_at": {"N": "1"}}'
    ///
    /// Example: ddbctl item put orders --plain '{"customer": "ann", "placed_at": 1, "paid": true}'
    ///
    /// Example: ddbctl item put orders --condition 'attribute_not_exists(customer)' - < item.json
    Put {
        /// The table's name.
        table: String,
        /// The item as DynamoDB JSON (plain JSON with --plain); `-` reads standard input.
        #[arg(value_name = "ITEM_JSON")]
        item: String,
        /// ITEM_JSON and --values are plain JSON: strings become S, numbers N, booleans BOOL,
        /// null NULL, arrays L, objects M (sets and binary need DynamoDB JSON).
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        condition: ConditionArgs,
    },
    /// Read one item by its key.
    ///
    /// Example: ddbctl item get orders '{"customer": {"S": "ann"}, "placed_at": {"N": "1"}}'
    Get {
        /// The table's name.
        table: String,
        /// The key as DynamoDB JSON (plain JSON with --plain); `-` reads standard input.
        #[arg(value_name = "KEY_JSON")]
        key: String,
        /// KEY_JSON is plain JSON.
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        /// A strongly consistent read.
        ///
        /// Example: --consistent
        #[arg(long)]
        consistent: bool,
        /// Attributes to return (ProjectionExpression).
        ///
        /// Example: --projection 'customer, amount'
        #[arg(long)]
        projection: Option<String>,
        /// Expression attribute names for --projection, as a JSON object.
        ///
        /// Example: --names '{"#t": "total"}'
        #[arg(long)]
        names: Option<String>,
    },
    /// Delete one item by its key.
    ///
    /// Example: ddbctl item delete orders '{"customer": {"S": "ann"}, "placed_at": {"N": "1"}}'
    Delete {
        /// The table's name.
        table: String,
        /// The key as DynamoDB JSON (plain JSON with --plain); `-` reads standard input.
        #[arg(value_name = "KEY_JSON")]
        key: String,
        /// KEY_JSON and --values are plain JSON.
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        condition: ConditionArgs,
        /// What to print: `all-old` shows the deleted item.
        ///
        /// Example: --return all-old
        #[arg(long = "return", value_enum, default_value_t = ReturnValues::None)]
        return_values: ReturnValues,
    },
    /// Change attributes of one item (creating it if absent) with an update expression.
    ///
    /// Example: ddbctl item update orders '{"customer":{"S":"ann"},"placed_at":{"N":"1"}}' --update 'SET amount = amount + :d' --values '{":d": {"N": "5"}}'
    Update {
        /// The table's name.
        table: String,
        /// The key as DynamoDB JSON (plain JSON with --plain); `-` reads standard input.
        #[arg(value_name = "KEY_JSON")]
        key: String,
        /// The update expression.
        ///
        /// Example: --update 'SET #s = :s REMOVE note'
        #[arg(long)]
        update: String,
        /// KEY_JSON and --values are plain JSON.
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        condition: ConditionArgs,
        /// What to print afterwards (default: the whole new item).
        ///
        /// Example: --return updated-old
        #[arg(long = "return", value_enum, default_value_t = ReturnValues::AllNew)]
        return_values: ReturnValues,
    },
    /// Read the items of one partition key, in sort key order.
    ///
    /// Example: ddbctl item query orders --key-condition 'customer = :c' --values '{":c": {"S": "ann"}}' --all
    Query {
        /// The table's name.
        table: String,
        /// The key condition: partition key equality, optionally a sort key condition.
        ///
        /// Example: --key-condition 'customer = :c AND placed_at BETWEEN :a AND :b'
        #[arg(long)]
        key_condition: String,
        /// --values is plain JSON.
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        placeholders: PlaceholderArgs,
        #[command(flatten)]
        read: ReadManyArgs,
        /// Descending sort key order (ScanIndexForward = false).
        ///
        /// Example: --reverse
        #[arg(long)]
        reverse: bool,
    },
    /// Read every item of a table (or one segment of a parallel scan).
    ///
    /// Example: ddbctl item scan orders --all
    ///
    /// Example: ddbctl item scan orders --segment 0 --total-segments 4 --filter 'paid = :t' --values '{":t": {"BOOL": true}}'
    Scan {
        /// The table's name.
        table: String,
        /// --values is plain JSON.
        ///
        /// Example: --plain
        #[arg(long)]
        plain: bool,
        #[command(flatten)]
        placeholders: PlaceholderArgs,
        #[command(flatten)]
        read: ReadManyArgs,
        /// This worker's segment of a parallel scan, 0-based (with --total-segments).
        ///
        /// Example: --segment 0
        #[arg(long, requires = "total_segments")]
        segment: Option<u64>,
        /// How many segments the parallel scan has (with --segment).
        ///
        /// Example: --total-segments 4
        #[arg(long, requires = "segment")]
        total_segments: Option<u64>,
    },
}
