//! Realistic demo and benchmark data: organizations with members, and prospects and
//! relationships with Kenyan names, companies, phone numbers and the organization's
//! vocabulary, spread over the last two years.
//!
//! `edge-server seed --orgs 100 --prospects 1000000 --largest 200000` gives one
//! organization 200,000 prospects and shares the rest evenly. The data is deterministic
//! for a given `--seed`. Rows are written in multi-row inserts inside each
//! organization's tenant scope, so seeding works as the runtime role behind row-level
//! security too. Every seeded member signs in with the same password (printed).

use chrono::{DateTime, Duration, Utc};
use edge_core::{Country, Error, Msisdn, OrgId};
use edge_tenancy::Role;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use secrecy::SecretString;
use serde_json::json;

use crate::crm::list::search_text;
use crate::db::begin_write;
use crate::entities::{memberships, organizations, prospects, record_tags, relationships, users};
use crate::identity::passwords;
use crate::organization_settings::OrganizationSettings;
use crate::tenant_scope;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    /// How many organizations.
    pub orgs: u32,
    /// Prospects in all.
    pub prospects: u64,
    /// Prospects of the first (largest) organization; the rest share the remainder.
    pub largest: Option<u64>,
    /// Members per organization (one org_admin, then managers and users).
    pub members: u32,
    /// One relationship per this many prospects (converted from one of them).
    pub relationship_every: u64,
    /// The random seed.
    pub seed: u64,
    /// The password of every seeded member.
    pub password: String,
}

impl Default for SeedPlan {
    fn default() -> Self {
        Self {
            orgs: 3,
            prospects: 300,
            largest: None,
            members: 5,
            relationship_every: 10,
            seed: 254,
            password: "edge demo password".into(),
        }
    }
}

/// One seeded organization.
#[derive(Debug, Clone)]
pub struct SeededOrg {
    /// Its id.
    pub id: OrgId,
    /// Its name.
    pub name: String,
    /// Member emails and ids, the org_admin first.
    pub members: Vec<(String, uuid::Uuid)>,
    /// Prospects written.
    pub prospects: u64,
}

/// The plan seeded organizations are on.
const SEEDED_PLAN: &str = "enterprise";

const FIRST: &[&str] = &[
    "Wanjiku",
    "Achieng",
    "Kamau",
    "Otieno",
    "Njeri",
    "Mwangi",
    "Wambui",
    "Kiprop",
    "Chebet",
    "Mutua",
    "Akinyi",
    "Omondi",
    "Nyambura",
    "Kipchoge",
    "Wairimu",
    "Barasa",
    "Auma",
    "Kariuki",
    "Moraa",
    "Onyango",
    "Jepkosgei",
    "Muthoni",
    "Juma",
    "Amina",
    "Halima",
    "Baraka",
    "Faith",
    "Mercy",
    "Brian",
    "Kevin",
    "Esther",
    "Grace",
    "Dennis",
    "Cynthia",
    "Hassan",
    "Zawadi",
    "Imani",
    "Tumaini",
    "Makena",
    "Nekesa",
];
const LAST: &[&str] = &[
    "Kamau",
    "Otieno",
    "Mwangi",
    "Wanjiru",
    "Ochieng",
    "Kiptoo",
    "Mutiso",
    "Njoroge",
    "Odhiambo",
    "Cheruiyot",
    "Wekesa",
    "Maina",
    "Kilonzo",
    "Owino",
    "Gitau",
    "Rotich",
    "Nyaga",
    "Abdi",
    "Mohamed",
    "Wafula",
    "Kimani",
    "Oduya",
    "Langat",
    "Mugo",
    "Koech",
    "Muriuki",
    "Atieno",
    "Chege",
    "Omolo",
    "Kibet",
];
const TRADES: &[&str] = &[
    "Traders",
    "Hardware",
    "Agrovet",
    "Supplies",
    "Logistics",
    "Enterprises",
    "Dairy",
    "Salon",
    "Motors",
    "Pharmacy",
    "Electricals",
    "Butchery",
    "Boutique",
    "Ventures",
    "Bakery",
    "Transporters",
];
const TOWNS: &[&str] = &[
    "Nairobi", "Mombasa", "Kisumu", "Nakuru", "Eldoret", "Thika", "Machakos", "Nyeri", "Meru",
    "Kitale", "Garissa", "Malindi",
];
const TAGS: &[&str] = &[
    "vip",
    "repeat",
    "bulk-buyer",
    "slow-payer",
    "referral-partner",
];
const PREFIXES: &[&str] = &["070", "071", "072", "074", "075", "079", "011", "010"];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn phone(rng: &mut StdRng) -> Option<Msisdn> {
    let number = format!(
        "{}{:07}",
        pick(rng, PREFIXES),
        rng.random_range(0..10_000_000u32)
    );
    Msisdn::parse(&number, Country::Kenya).ok()
}

/// How many prospects each organization gets.
fn shares(plan: &SeedPlan) -> Vec<u64> {
    let orgs = u64::from(plan.orgs.max(1));
    let mut out = Vec::new();
    let (first, rest_total, rest_orgs) = match plan.largest {
        Some(largest) if orgs > 1 => (
            largest.min(plan.prospects),
            plan.prospects.saturating_sub(largest),
            orgs - 1,
        ),
        _ => {
            let each = plan.prospects / orgs;
            (
                each + plan.prospects % orgs,
                plan.prospects - each - plan.prospects % orgs,
                orgs - 1,
            )
        }
    };
    out.push(first);
    for i in 0..rest_orgs {
        let base = rest_total / rest_orgs.max(1);
        out.push(base + u64::from(i < rest_total % rest_orgs.max(1)));
    }
    out
}

/// Generates the plan's data; `progress` hears about each organization when done.
pub async fn run(
    db: &DatabaseConnection,
    plan: &SeedPlan,
    now: DateTime<Utc>,
    mut progress: impl FnMut(&SeededOrg),
) -> Result<Vec<SeededOrg>, Error> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let password_hash = passwords::hash(SecretString::from(plan.password.clone())).await?;
    let settings = OrganizationSettings::default();
    let run_tag = format!("{:04x}", rng.random_range(0..0x10000u32));
    // Seeded organizations are on the enterprise plan (no message quota), on a trial.
    let plan_of_seeded = crate::billing::plans::find(db, SEEDED_PLAN).await?;
    let mut seeded = Vec::new();
    for (index, count) in shares(plan).into_iter().enumerate() {
        let name = format!(
            "{} {} {}",
            pick(&mut rng, TOWNS),
            pick(&mut rng, LAST),
            pick(&mut rng, TRADES)
        );
        let slug = format!("seed-{run_tag}-{index}");
        let org = organizations::Model::new_active(
            slug.clone(),
            name.clone(),
            "KES".into(),
            "KE".into(),
            plan_of_seeded.code.clone(),
            now,
        );
        let org_id = OrgId::from_uuid(org.id);
        let members = tenant_scope::in_organization(org_id, async {
            let txn = begin_write(db).await.map_err(Error::internal)?;
            organizations::Entity::insert(organizations::ActiveModel::from(org.clone()))
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
            crate::billing::subscriptions::start(&txn, org_id, &plan_of_seeded, now).await?;
            crate::crm::pipelines::create_default(&txn, org_id, now).await?;
            let mut members = Vec::new();
            for m in 0..plan.members.max(1) {
                let role = match m {
                    0 => Role::OrgAdmin,
                    1 | 2 => Role::Manager,
                    _ => Role::User,
                };
                let email = format!("{}{m}@{slug}.example", role.as_str().replace('_', ""));
                let user = users::Model {
                    id: uuid::Uuid::now_v7(),
                    email: email.clone(),
                    name: format!("{} {}", pick(&mut rng, FIRST), pick(&mut rng, LAST)),
                    password_hash: password_hash.clone(),
                    is_operator: false,
                    status: "active".into(),
                    created_at: now,
                    updated_at: now,
                };
                users::Entity::insert(users::ActiveModel::from(user.clone()))
                    .exec_without_returning(&txn)
                    .await
                    .map_err(Error::internal)?;
                memberships::Entity::insert(memberships::ActiveModel {
                    organization_id: Set(org.id),
                    id: Set(uuid::Uuid::now_v7()),
                    user_id: Set(user.id),
                    role: Set(role.as_str().to_owned()),
                    status: Set("active".into()),
                    created_at: Set(now),
                    updated_at: Set(now),
                })
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
                members.push((email, user.id));
            }
            txn.commit().await.map_err(Error::internal)?;
            Ok::<_, Error>(members)
        })
        .await?;
        let owners: Vec<uuid::Uuid> = members.iter().map(|m| m.1).collect();
        tenant_scope::in_organization(
            org_id,
            prospects_for(db, &mut rng, &settings, org.id, &owners, count, plan, now),
        )
        .await?;
        let done = SeededOrg {
            id: org_id,
            name,
            members,
            prospects: count,
        };
        progress(&done);
        seeded.push(done);
    }
    Ok(seeded)
}

/// Rows per multi-row insert (well under PostgreSQL's 65,535 bind parameters).
const BATCH: u64 = 1000;

#[allow(clippy::too_many_arguments)]
async fn prospects_for(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    settings: &OrganizationSettings,
    org: uuid::Uuid,
    owners: &[uuid::Uuid],
    count: u64,
    plan: &SeedPlan,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let span_seconds = 730 * 24 * 3600;
    let mut written = 0;
    while written < count {
        let n = BATCH.min(count - written);
        let mut rows = Vec::with_capacity(n as usize);
        let mut tag_rows = Vec::new();
        let mut customers = Vec::new();
        for i in 0..n {
            let created_at = now - Duration::seconds(rng.random_range(0..span_seconds));
            let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(created_at.timestamp()).unwrap_or_default(),
                created_at.timestamp_subsec_nanos(),
            ));
            let first = pick(rng, FIRST);
            let last = pick(rng, LAST);
            let name = format!("{first} {last}");
            let company = rng
                .random_bool(0.8)
                .then(|| format!("{} {}", pick(rng, LAST), pick(rng, TRADES)));
            let phones: Vec<Msisdn> = phone(rng).into_iter().collect();
            let email = rng.random_bool(0.6).then(|| {
                format!(
                    "{}.{}{}@example.co.ke",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    rng.random_range(1..999)
                )
            });
            let tags: Vec<&str> = if rng.random_bool(0.2) {
                vec![pick(rng, TAGS)]
            } else {
                Vec::new()
            };
            for tag in &tags {
                tag_rows.push(record_tags::ActiveModel {
                    organization_id: Set(org),
                    record_type: Set("prospect".into()),
                    tag: Set((*tag).to_owned()),
                    record_id: Set(id),
                });
            }
            let owner = owners[rng.random_range(0..owners.len())];
            let pick_list = |rng: &mut StdRng, list: &[String]| {
                (!list.is_empty()).then(|| list[rng.random_range(0..list.len())].clone())
            };
            let updated_at = created_at + Duration::seconds(rng.random_range(0..86_400));
            let row = prospects::Model {
                organization_id: org,
                id,
                search_text: search_text(
                    [
                        name.as_str(),
                        company.as_deref().unwrap_or_default(),
                        email.as_deref().unwrap_or_default(),
                    ],
                    &phones,
                ),
                phone: phones.first().map(|p| p.as_e164().to_owned()),
                phones: json!(phones.iter().map(Msisdn::as_e164).collect::<Vec<_>>()),
                name,
                company,
                email,
                lead_source: pick_list(rng, &settings.lead_sources),
                industry: pick_list(rng, &settings.industries),
                services: json!([]),
                owner_id: Some(owner),
                milestone: pick_list(rng, &settings.milestones).unwrap_or_default(),
                happiness: pick_list(rng, &settings.happiness_ratings),
                estimated_value_minor: rng
                    .random_bool(0.7)
                    .then(|| rng.random_range(5_000..2_000_000i64) * 100),
                currency: "KES".into(),
                tags: json!(tags),
                custom: json!({}),
                relationship_id: None,
                created_by: Some(owner),
                created_at,
                updated_at: updated_at.min(now),
                deleted_at: None,
            };
            if plan.relationship_every > 0 && (written + i) % plan.relationship_every == 0 {
                customers.push(row.clone());
            }
            rows.push(row);
        }
        let mut relationship_rows = Vec::new();
        for prospect in &mut rows {
            if !customers.iter().any(|c| c.id == prospect.id) {
                continue;
            }
            let id = uuid::Uuid::now_v7();
            prospect.relationship_id = Some(id);
            relationship_rows.push(relationships::ActiveModel::from(relationships::Model {
                organization_id: org,
                id,
                name: prospect.name.clone(),
                company: prospect.company.clone(),
                phone: prospect.phone.clone(),
                phones: prospect.phones.clone(),
                email: prospect.email.clone(),
                industry: prospect.industry.clone(),
                services: json!([]),
                account_manager_id: prospect.owner_id,
                happiness: prospect.happiness.clone(),
                contract_value_minor: prospect.estimated_value_minor,
                currency: "KES".into(),
                tags: prospect.tags.clone(),
                custom: json!({}),
                search_text: prospect.search_text.clone(),
                prospect_id: Some(prospect.id),
                created_by: prospect.owner_id,
                created_at: prospect.updated_at,
                updated_at: prospect.updated_at,
                deleted_at: None,
            }));
        }
        let txn = begin_write(db).await.map_err(Error::internal)?;
        prospects::Entity::insert_many(rows.into_iter().map(prospects::ActiveModel::from))
            .exec_without_returning(&txn)
            .await
            .map_err(Error::internal)?;
        if !relationship_rows.is_empty() {
            relationships::Entity::insert_many(relationship_rows)
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
        }
        if !tag_rows.is_empty() {
            record_tags::Entity::insert_many(tag_rows)
                .exec_without_returning(&txn)
                .await
                .map_err(Error::internal)?;
        }
        txn.commit().await.map_err(Error::internal)?;
        written += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_organization_gets_its_share_and_the_rest_is_even() {
        let plan = SeedPlan {
            orgs: 100,
            prospects: 1_000_000,
            largest: Some(200_000),
            ..SeedPlan::default()
        };
        let split = shares(&plan);
        assert_eq!(split.len(), 100);
        assert_eq!(split[0], 200_000);
        assert_eq!(split.iter().sum::<u64>(), 1_000_000);
        assert!(split[1..].iter().all(|s| (8080..=8081).contains(s)));
        let even = shares(&SeedPlan {
            orgs: 3,
            prospects: 10,
            largest: None,
            ..SeedPlan::default()
        });
        assert_eq!(even.iter().sum::<u64>(), 10);
    }

    #[test]
    fn generated_phones_are_kenyan_mobiles() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let phone = phone(&mut rng).expect("a valid number");
            assert!(phone.as_e164().starts_with("+2547") || phone.as_e164().starts_with("+2541"));
        }
    }
}
